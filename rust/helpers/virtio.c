// SPDX-License-Identifier: GPL-2.0

#include <linux/virtio.h>
#include <linux/virtio_config.h>

__rust_helper
bool rust_helper___virtio_test_bit(const struct virtio_device *vdev,
				   unsigned int fbit)
{
	return __virtio_test_bit(vdev, fbit);
}

__rust_helper
void rust_helper_virtio_device_ready(struct virtio_device *vdev)
{
	virtio_device_ready(vdev);
}

__rust_helper
void rust_helper___virtio_clear_bit(struct virtio_device *vdev,
				    unsigned int fbit)
{
	__virtio_clear_bit(vdev, fbit);
}
