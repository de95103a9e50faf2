// SPDX-License-Identifier: GPL-2.0
/*
 * Harness canary: commits, on purpose, one bug of the kind a kernel checker
 * looks for, so that a scenario can prove the checker is on and the test
 * runner reports what it prints (tests/guest/scenarios/canary-*.sh).
 *
 *   insmod checker_canary.ko bug=NAME [secs=N]
 *
 * NAME is one of:
 *   lockdep       take two mutexes in both orders (lockdep: circular dependency)
 *   atomic-sleep  a GFP_KERNEL allocation under a spinlock (DEBUG_ATOMIC_SLEEP)
 *   kfence        read a KFENCE-guarded object after freeing it (KFENCE)
 *   kasan         read just past the end of a slab object (KASAN)
 *   list          add a list node twice (DEBUG_LIST)
 *   odebug        initialise a work item on the stack without the on-stack
 *                 annotation (DEBUG_OBJECTS_WORK)
 *   ubsan         read past the end of an array (UBSAN_BOUNDS)
 *   hung-task     a kthread sleeps uninterruptibly for secs seconds (hung task)
 *   stall         spin with preemption off for secs seconds (soft lockup and
 *                 RCU stall detectors)
 *   wq-lockup     a work item hogs its CPU for secs seconds while another
 *                 waits behind it in the same pool (workqueue watchdog)
 *
 * The scenarios lower the detectors' thresholds through sysctl and module
 * parameters first, so that each canary takes seconds. None of the bugs
 * corrupts memory the kernel still uses: the module is safe to load in a test
 * guest, and useless anywhere else.
 */

#include <linux/delay.h>
#include <linux/kfence.h>
#include <linux/kthread.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

static char *bug = "";
module_param(bug, charp, 0444);
MODULE_PARM_DESC(bug, "the bug to commit (see the source)");

static unsigned int secs = 5;
module_param(secs, uint, 0444);
MODULE_PARM_DESC(secs, "how long the hung-task, stall and wq-lockup bugs last");

static DEFINE_MUTEX(canary_a);
static DEFINE_MUTEX(canary_b);

static int canary_lockdep(void)
{
	mutex_lock(&canary_a);
	mutex_lock(&canary_b);
	mutex_unlock(&canary_b);
	mutex_unlock(&canary_a);
	/* The inverse order: a deadlock waiting for a second thread. */
	mutex_lock(&canary_b);
	mutex_lock(&canary_a);
	mutex_unlock(&canary_a);
	mutex_unlock(&canary_b);
	return 0;
}

static DEFINE_SPINLOCK(canary_lock);

static int canary_atomic_sleep(void)
{
	void *p;

	spin_lock(&canary_lock);
	p = kmalloc(64, GFP_KERNEL);	/* may sleep */
	spin_unlock(&canary_lock);
	kfree(p);
	return 0;
}

static int canary_kfence(void)
{
	unsigned long end = jiffies + 30 * HZ;
	char *p = NULL;

	/* KFENCE guards one allocation per sample interval: allocate until we get one. */
	while (time_before(jiffies, end)) {
		p = kmalloc(32, GFP_KERNEL);
		if (!p)
			return -ENOMEM;
		if (is_kfence_address(p))
			break;
		kfree(p);
		p = NULL;
		msleep(1);
	}
	if (!p) {
		pr_err("checker_canary: no KFENCE allocation in 30 s\n");
		return -ETIMEDOUT;
	}
	kfree(p);
	/* KFENCE keeps the freed object's page unmapped: this faults and reports. */
	pr_info("checker_canary: read after free: %d\n", READ_ONCE(p[0]));
	return 0;
}

static int canary_kasan(void)
{
	/* volatile: the compiler must not see the index coming. */
	volatile int i = 30;
	char *p = kmalloc(30, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	/* In the object's slot (kmalloc-32), past its 30 bytes: KASAN's redzone. */
	pr_info("checker_canary: p[%d] = %d\n", i, READ_ONCE(p[i]));
	kfree(p);
	return 0;
}

static int canary_list(void)
{
	LIST_HEAD(head);
	struct list_head node;

	list_add(&node, &head);
	/* DEBUG_LIST refuses the second add and leaves the list as it was. */
	list_add(&node, &head);
	list_del(&node);
	return 0;
}

static void canary_work_fn(struct work_struct *work)
{
}

static int canary_odebug(void)
{
	struct work_struct work;

	INIT_WORK(&work, canary_work_fn);	/* should be INIT_WORK_ONSTACK */
	destroy_work_on_stack(&work);
	return 0;
}

static struct {
	int a[4];
	int pad[4];
} canary_array;

static int canary_ubsan(void)
{
	/* volatile: the compiler must not see the index coming. */
	volatile int i = ARRAY_SIZE(canary_array.a);

	/* Out of bounds of a[], but inside the structure: nothing is corrupted. */
	pr_info("checker_canary: a[%d] = %d\n", i, canary_array.a[i]);
	return 0;
}

static int canary_sleeper(void *data)
{
	schedule_timeout_uninterruptible(secs * HZ);
	return 0;
}

static int canary_hung_task(void)
{
	struct task_struct *t;

	t = kthread_run(canary_sleeper, NULL, "canary_hung");
	if (IS_ERR(t))
		return PTR_ERR(t);
	/* Wait for it here too, so that the module outlives the thread. */
	msleep((secs + 1) * 1000);
	return 0;
}

static int canary_stall(void)
{
	unsigned long end = jiffies + secs * HZ;

	/* RCU reports a stall only while a grace period waits: start one. */
	(void)start_poll_synchronize_rcu();
	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
	return 0;
}

static void canary_hog_fn(struct work_struct *work)
{
	unsigned long end = jiffies + secs * HZ;

	/*
	 * Preemption off: the pool marks the item CPU-intensive and wakes another
	 * worker for the waiting one, but that worker cannot run on this CPU.
	 */
	preempt_disable();
	while (time_before(jiffies, end))
		cpu_relax();
	preempt_enable();
}

static DECLARE_WORK(canary_hog, canary_hog_fn);
static DECLARE_WORK(canary_waiter, canary_work_fn);

static int canary_wq_lockup(void)
{
	int cpu = get_cpu();

	queue_work_on(cpu, system_wq, &canary_hog);
	queue_work_on(cpu, system_wq, &canary_waiter);
	put_cpu();
	flush_work(&canary_hog);
	flush_work(&canary_waiter);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} canaries[] = {
	{ "lockdep", canary_lockdep },
	{ "atomic-sleep", canary_atomic_sleep },
	{ "kfence", canary_kfence },
	{ "kasan", canary_kasan },
	{ "list", canary_list },
	{ "odebug", canary_odebug },
	{ "ubsan", canary_ubsan },
	{ "hung-task", canary_hung_task },
	{ "stall", canary_stall },
	{ "wq-lockup", canary_wq_lockup },
};

static int __init checker_canary_init(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(canaries); i++) {
		if (!strcmp(bug, canaries[i].name)) {
			pr_info("checker_canary: committing '%s' on purpose\n", bug);
			return canaries[i].fn();
		}
	}
	pr_err("checker_canary: unknown bug '%s'\n", bug);
	return -EINVAL;
}

static void __exit checker_canary_exit(void)
{
}

module_init(checker_canary_init);
module_exit(checker_canary_exit);
MODULE_DESCRIPTION("Commits one checker-detectable bug on purpose, to test the test harness");
MODULE_LICENSE("GPL");
