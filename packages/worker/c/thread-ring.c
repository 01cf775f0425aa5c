// The native side of a threaded route's call ring (src/native/thread-ring.ts):
// the route's threads share its call descriptors. A thread takes any
// submitted call (SUBMITTED -> RUNNING), calls the plugin and publishes the
// completion, then takes the next submitted call without sleeping while there
// is one: under load a thread chains calls, and only an idle thread sleeps.
// Built by scripts/build-thread-ring.mjs into dist/native/thread-ring.so.
//
// A descriptor is shared with JS (which reads and writes it through a Buffer):
//   state    int32  IDLE -> SUBMITTED (JS) -> RUNNING (a thread) -> DONE (thread) -> IDLE (JS);
//                   SUBMITTED -> IDLE (JS) cancels a call no thread has taken
//   unused   int32
//   rc       int32  handle_request's return value
//   fn       u64    handle_request(req, resp), or flexilib_adapter_call(plugin, req, resp) when plugin != 0
//   plugin   u64
//   req      u64
//   resp     u64
// Sleeping threads wait on the ring's `seq`, which JS bumps on every submit;
// JS wakes one once per loop round that submitted, only when `sleepers` says
// one may sleep and no wake is on its way (`waking`). On a route whose last
// call took SLOW_NS or more, a thread that takes a call while others are
// left untaken wakes one more first: the call may block, and the calls behind
// it must not wait for it (on a route of fast calls, JS's watchdog does that
// should a call block after all). Wakes of the event
// loop are per burst: a thread writes one byte to the ring's pipe only when
// it flips `notified` from 0 to 1; JS clears it before it collects every DONE
// descriptor, so a completion is never missed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { IDLE = 0, SUBMITTED = 1, DONE = 2, RUNNING = 4 };

// A call this long is one that may block: while the route's last call took
// this long, a thread taking a call wakes another for the calls behind it.
#define SLOW_NS 50000

typedef struct {
  _Atomic int32_t state;
  int32_t unused;
  int32_t rc;
  int32_t pad;
  uint64_t fn;
  uint64_t plugin;
  uint64_t req;
  uint64_t resp;
} desc_t; // 48 bytes: JS's layout in thread-ring.ts

typedef struct {
  _Atomic int32_t notified; // offset 0: JS clears it before draining
  int32_t read_fd;          // offset 4
  int32_t write_fd;         // offset 8
  int32_t capacity;         // offset 12
  _Atomic int32_t refs;     // offset 16: JS + live threads; the last one frees the ring
  _Atomic int32_t seq;      // offset 20: bumped by JS on every submit; idle threads wait on it
  _Atomic int32_t sleepers; // offset 24: threads that are (or are about to be) waiting on seq
  _Atomic int32_t quit;     // offset 28: set by flexi_ring_close
  _Atomic int32_t next;     // offset 32: where threads start looking for a call
  _Atomic int32_t waking;   // offset 36: a wake is on its way (set by its sender, cleared by a thread that waited)
  _Atomic int32_t slow;     // offset 40: the last call returned took SLOW_NS or more (1 until one returns)
  _Atomic int32_t claims;   // offset 44: calls taken so far (wrapping): JS's watchdog sees the threads move on
  int32_t pad[4];
  desc_t desc[];            // offset 64
} ring_t;

typedef int (*v1_fn)(void *req, void *resp);
typedef int (*adapter_fn)(void *plugin, void *req, void *resp);

static void unref(ring_t *r) {
  if (atomic_fetch_sub(&r->refs, 1) == 1) {
    close(r->write_fd);
    free(r);
  }
}

static long futex(_Atomic int32_t *addr, int op, int32_t val) {
  return syscall(SYS_futex, (int32_t *)addr, op, val, NULL, NULL, 0);
}

// A submitted call for this thread, or -1: the first SUBMITTED descriptor it wins,
// looking from just after the last one taken, round the ring, so that a call
// waits at most one turn of the ring whichever descriptors JS refills first.
static int32_t claim(ring_t *r) {
  int32_t cap = r->capacity;
  int32_t from = atomic_load_explicit(&r->next, memory_order_relaxed);
  for (int32_t k = 0; k < cap; k++) {
    int32_t i = from + k < cap ? from + k : from + k - cap;
    int32_t s = SUBMITTED;
    if (atomic_load_explicit(&r->desc[i].state, memory_order_relaxed) == SUBMITTED &&
        atomic_compare_exchange_strong(&r->desc[i].state, &s, RUNNING)) {
      atomic_store_explicit(&r->next, i + 1 < cap ? i + 1 : 0, memory_order_relaxed);
      atomic_fetch_add_explicit(&r->claims, 1, memory_order_relaxed);
      return i;
    }
  }
  return -1;
}

// Is a submitted call left that no thread has taken?
static int any_submitted(ring_t *r) {
  for (int32_t i = 0; i < r->capacity; i++)
    if (atomic_load_explicit(&r->desc[i].state, memory_order_relaxed) == SUBMITTED) return 1;
  return 0;
}

// Wake one waiting thread, unless a wake is already on its way. `seq` moves
// first, so a thread about to wait (counted in sleepers, not yet in the
// futex) returns at once and looks again rather than sleeping through it.
static void wake_one(ring_t *r) {
  int32_t idle = 0;
  if (!atomic_compare_exchange_strong(&r->waking, &idle, 1)) return;
  atomic_fetch_add(&r->seq, 1);
  futex(&r->seq, FUTEX_WAKE_PRIVATE, 1);
}

static void *run(void *p) {
  ring_t *r = p;
  while (!atomic_load(&r->quit)) {
    int32_t i = claim(r);
    if (i < 0) {
      // Dekker with JS: it stores SUBMITTED, bumps seq, then loads sleepers; we add to
      // sleepers, load seq, then look again. Either JS sees us and wakes us, or we see its
      // call, or seq moved and the wait returns at once.
      atomic_fetch_add(&r->sleepers, 1);
      int32_t seq = atomic_load(&r->seq);
      i = claim(r);
      if (i < 0 && !atomic_load(&r->quit)) {
        // `waking` is cleared only by a thread that looks for calls after it (the claim
        // after a wait, or this thread's, made after its load of seq: a wake sent after that
        // load moved seq, so this wait returns at once): a wake a sender skipped because
        // one was on its way is never lost.
        atomic_store(&r->waking, 0);
        futex(&r->seq, FUTEX_WAIT_PRIVATE, seq);
        atomic_store(&r->waking, 0);
      }
      atomic_fetch_sub(&r->sleepers, 1);
      if (i < 0) continue;
    }
    // On a route whose calls block, calls left behind this one get a thread of their own now
    // (that one, finding more, wakes the next). On a route of fast calls that wake would
    // mostly find the burst taken: JS's watchdog wakes a thread for calls still untaken
    // a millisecond on, should this call block after all.
    if (atomic_load_explicit(&r->slow, memory_order_relaxed) && atomic_load(&r->sleepers) > 0 && any_submitted(r)) wake_one(r);
    desc_t *d = &r->desc[i];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = d->plugin ? ((adapter_fn)(uintptr_t)d->fn)((void *)(uintptr_t)d->plugin, (void *)(uintptr_t)d->req, (void *)(uintptr_t)d->resp)
                       : ((v1_fn)(uintptr_t)d->fn)((void *)(uintptr_t)d->req, (void *)(uintptr_t)d->resp);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int32_t slow = (t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) >= SLOW_NS;
    if (atomic_load_explicit(&r->slow, memory_order_relaxed) != slow) atomic_store_explicit(&r->slow, slow, memory_order_relaxed);
    d->rc = rc;
    atomic_store(&d->state, DONE);
    if (atomic_exchange(&r->notified, 1) == 0) {
      char b = 1;
      while (write(r->write_fd, &b, 1) < 0 && errno == EINTR) {}
    }
  }
  unref(r);
  return NULL;
}

// A ring of `capacity` descriptors; its pipe's read end is ring->read_fd (non-blocking, for JS). NULL on failure.
ring_t *flexi_ring_open(int32_t capacity) {
  ring_t *r = calloc(1, sizeof(ring_t) + (size_t)capacity * sizeof(desc_t));
  if (!r) return NULL;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    free(r);
    return NULL;
  }
  r->read_fd = fds[0];
  r->write_fd = fds[1];
  r->capacity = capacity;
  atomic_store(&r->slow, 1);
  atomic_store(&r->refs, 1);
  return r;
}

// Start one more thread with `stack` bytes of stack. 0, or an errno.
int32_t flexi_ring_add_thread(ring_t *r, int32_t stack) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, (size_t)stack);
  atomic_fetch_add(&r->refs, 1);
  pthread_t t;
  int err = pthread_create(&t, &attr, run, r);
  pthread_attr_destroy(&attr);
  if (err) atomic_fetch_sub(&r->refs, 1);
  return err;
}

// Wake one idle thread (JS saw sleepers after its round's submits), unless a wake is on its way.
void flexi_ring_wake(ring_t *r) {
  wake_one(r);
}

// JS is done with the ring (no call runs: JS closes only then): every thread
// is told to quit; the last to go frees the ring.
void flexi_ring_close(ring_t *r) {
  atomic_store(&r->quit, 1);
  atomic_fetch_add(&r->seq, 1);
  futex(&r->seq, FUTEX_WAKE_PRIVATE, 0x7fffffff);
  unref(r);
}
