// The native side of a threaded route's call ring (src/native/thread-ring.ts):
// one thread per call slot, each sleeping on its descriptor's state word until
// JS submits a call, then calling the plugin and publishing the completion.
// Built by scripts/build-thread-ring.mjs into dist/native/thread-ring.so.
//
// A descriptor is shared with JS (which reads and writes it through a Buffer):
//   state    int32  IDLE -> SUBMITTED (JS) -> DONE (thread) -> IDLE (JS) ...; QUIT (JS) ends the thread
//   sleeping int32  1 while the thread waits (or is about to) in futex_wait: JS wakes it only then
//   rc       int32  handle_request's return value
//   fn       u64    handle_request(req, resp), or flexilib_adapter_call(plugin, req, resp) when plugin != 0
//   plugin   u64
//   req      u64
//   resp     u64
// Wakes of the event loop are per burst: a thread writes one byte to the
// ring's pipe only when it flips `notified` from 0 to 1; JS clears it before
// it collects every DONE descriptor, so a completion is never missed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { IDLE = 0, SUBMITTED = 1, DONE = 2, QUIT = 3 };

typedef struct {
  _Atomic int32_t state;
  _Atomic int32_t sleeping;
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
  _Atomic int32_t refs;     // JS + live threads; the last one frees the ring
  int32_t pad[3];
  desc_t desc[];            // offset 32
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

typedef struct { ring_t *ring; desc_t *d; } thread_arg;

static void *run(void *p) {
  thread_arg a = *(thread_arg *)p;
  free(p);
  ring_t *r = a.ring;
  desc_t *d = a.d;
  for (;;) {
    int32_t s = atomic_load(&d->state);
    while (s != SUBMITTED && s != QUIT) {
      // Dekker with JS: it stores state then loads sleeping; we store sleeping then load state.
      atomic_store(&d->sleeping, 1);
      s = atomic_load(&d->state);
      if (s != SUBMITTED && s != QUIT) futex(&d->state, FUTEX_WAIT_PRIVATE, s);
      atomic_store(&d->sleeping, 0);
      s = atomic_load(&d->state);
    }
    if (s == QUIT) break;
    int rc = d->plugin ? ((adapter_fn)(uintptr_t)d->fn)((void *)(uintptr_t)d->plugin, (void *)(uintptr_t)d->req, (void *)(uintptr_t)d->resp)
                       : ((v1_fn)(uintptr_t)d->fn)((void *)(uintptr_t)d->req, (void *)(uintptr_t)d->resp);
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
  atomic_store(&r->refs, 1);
  return r;
}

// Start the thread of descriptor i with `stack` bytes of stack. 0, or an errno.
int32_t flexi_ring_start(ring_t *r, int32_t i, int32_t stack) {
  if (i < 0 || i >= r->capacity) return EINVAL;
  thread_arg *a = malloc(sizeof *a);
  if (!a) return ENOMEM;
  a->ring = r;
  a->d = &r->desc[i];
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, (size_t)stack);
  atomic_fetch_add(&r->refs, 1);
  pthread_t t;
  int err = pthread_create(&t, &attr, run, a);
  pthread_attr_destroy(&attr);
  if (err) {
    atomic_fetch_sub(&r->refs, 1);
    free(a);
  }
  return err;
}

// Wake descriptor i's thread (JS saw it sleeping after submitting).
void flexi_ring_wake(ring_t *r, int32_t i) {
  futex(&r->desc[i].state, FUTEX_WAKE_PRIVATE, 1);
}

// JS is done with the ring: every started thread is told to quit (each must
// be idle: JS closes only when no call runs); the last to go frees the ring.
void flexi_ring_close(ring_t *r) {
  for (int32_t i = 0; i < r->capacity; i++) {
    atomic_store(&r->desc[i].state, QUIT);
    futex(&r->desc[i].state, FUTEX_WAKE_PRIVATE, 1);
  }
  unref(r);
}
