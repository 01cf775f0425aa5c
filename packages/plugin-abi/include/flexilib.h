/*
 * flexilib.h — the flexilib plugin ABI, version 1.
 *
 * A plugin is a shared library (or, later, a WASM module) that exports
 *
 *     int handle_request(const flexi_request *req, flexi_response *resp);
 *
 * and includes this header once in any translation unit: that alone exports
 * `flexi_abi_version`, which the host checks before the first call. The host
 * refuses a plugin whose MAJOR version differs from its own.
 *
 * Versioning rule: the major version changes when any existing struct field,
 * helper semantics or required export changes; the minor version changes when
 * something is only added (a field at the end of a struct, a new optional
 * export, a new helper). A plugin built against 1.x loads in any 1.y host.
 *
 * Optional exports:
 *     int  flexi_init(void);       once after load; nonzero fails the load
 *     void flexi_deinit(void);     once before unload (reload or shutdown)
 *     void request_deinit(void);   after every request (FlexiLib's name)
 *
 * Memory: every call gets a response whose arena was pre-allocated by the host
 * (RESPONSE_PREALLOCATION_KB, default 8) and is reused, with no system call,
 * for every request that the executing thread serves. All helpers below work
 * inside that arena without calling back into the host:
 *
 *     arena:  [ body grows up ->            free            <- allocations ]
 *             ^arena                        ^body_cap == arena_top         ^arena+arena_size
 *
 * When the body outgrows the arena it moves to a malloc'd block (realloc'd as
 * it grows); when allocations no longer fit they come from malloc'd blocks
 * chained on `heap`. The host frees both after the response is sent, so a
 * response of any size works and nothing outlives the request. Everything a
 * plugin gets from the helpers is valid until handle_request returns and the
 * host has copied the response out — never keep a pointer across requests.
 * The request (`req` and all it points to) is read-only and valid only during
 * the call.
 *
 * Threading: on an inline route (the default) calls run one at a time on the
 * worker's event loop; on a `mode = threaded` route up to `threads` calls run
 * at once on pool threads, so handle_request must be thread-safe. The helpers
 * always are: each call has its own response and arena. Each worker process,
 * and each reload, loads a fresh copy of the library: globals start anew.
 *
 * The full contract (lifetimes, reload, errors, build recipes): docs/plugins.md.
 *
 * WASM: the same source builds a WASM plugin, with no change, by
 *
 *     zig cc --target=wasm32-wasi -mexec-model=reactor -O2 -I <this folder> -o p.wasm p.c
 *
 * There, the structs live in the module's linear memory (pointers and size_t
 * are 32-bit), and the host cannot call malloc/free from outside, so under
 * __wasm__ this header also exports the few entry points the host needs:
 * flexi_wasm_alloc/flexi_wasm_free (the module's own allocator, for the
 * request and response areas the host sets up once per instance) and
 * flexi_wasm_release (frees the overflow body and heap chain inside the
 * module, where the native host would call libc free). See docs/wasm.md.
 */
#ifndef FLEXILIB_H
#define FLEXILIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEXI_ABI_VERSION_MAJOR 1
#define FLEXI_ABI_VERSION_MINOR 0
/* Encoded as (major << 16) | minor. */
#define FLEXI_ABI_VERSION ((FLEXI_ABI_VERSION_MAJOR << 16) | FLEXI_ABI_VERSION_MINOR)

#if defined(_WIN32)
#define FLEXI_EXPORT __declspec(dllexport)
#else
#define FLEXI_EXPORT __attribute__((visibility("default")))
#endif

/* A function the host looks up by name. In WASM, default visibility alone
 * exports nothing unless the linker is told to: name the export explicitly. */
#if defined(__wasm__)
#define FLEXI_EXPORT_AS(name) __attribute__((export_name(name)))
#else
#define FLEXI_EXPORT_AS(name) FLEXI_EXPORT
#endif

/* Exported by including this header. Weak, so that several translation units of
 * one plugin may include it. Override only to test the host's version check. */
#ifndef FLEXI_NO_VERSION_EXPORT
FLEXI_EXPORT __attribute__((weak, used)) const uint32_t flexi_abi_version = FLEXI_ABI_VERSION;
#endif

/** One header: bytes as received, not NUL-terminated. */
typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} flexi_header;

/** The request, read-only, valid during handle_request only. Strings are not NUL-terminated. */
typedef struct {
  const char *method;
  size_t method_len;
  const char *target;               /* path and query, as received */
  size_t target_len;
  const flexi_header *headers;      /* received order, names as sent */
  size_t headers_len;
  const uint8_t *body;
  size_t body_len;
  /* v1.0 additions (fields after these are appended only in minor versions) */
  const char *remote_addr;          /* peer IP address as text */
  size_t remote_addr_len;
  uint16_t remote_port;
  uint8_t http_major;
  uint8_t http_minor;
  uint32_t host_abi_version;        /* the host's FLEXI_ABI_VERSION */
} flexi_request;

/** A response header, copied into the arena by flexi_add_header*. */
typedef struct flexi_resp_header {
  struct flexi_resp_header *next;
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} flexi_resp_header;

/** A malloc'd overflow block; the host frees the chain after the response. */
typedef struct flexi_heap_block {
  struct flexi_heap_block *next;
  size_t size;
} flexi_heap_block;

/* The response. Its fields are set by the host before every call; plugins
 * should change them only through the helpers below. */
struct flexi_response {
  int32_t status;                   /* 0 means 200 */
  uint32_t flags;                   /* reserved, 0 */
  const char *reason;               /* optional reason phrase, NULL for the standard one */
  size_t reason_len;
  flexi_resp_header *headers;       /* first header, in insertion order */
  flexi_resp_header *headers_tail;
  size_t headers_len;
  uint8_t *body;                    /* == arena while the body fits in it */
  size_t body_len;
  size_t body_cap;
  uint8_t *arena;                   /* pre-allocated, reused across requests */
  size_t arena_size;
  size_t arena_top;                 /* allocations live in [arena_top, arena_size) */
  flexi_heap_block *heap;           /* overflow allocations, freed by the host */
  size_t heap_bytes;                /* bytes taken from malloc for this request */
};
typedef struct flexi_response flexi_response;

/** The one required export. Return 0 on success; nonzero answers 500 unless the
 * plugin set a status >= 400 (the body written so far is kept). */
FLEXI_EXPORT_AS("handle_request") int handle_request(const flexi_request *req, flexi_response *resp);

#if defined(__wasm__)
/* The optional exports, declared so that a plugin defining them exports them
 * from a WASM module too (a .so exports every non-static function anyway).
 * Declaring without defining exports nothing. */
FLEXI_EXPORT_AS("flexi_init") int flexi_init(void);
FLEXI_EXPORT_AS("flexi_deinit") void flexi_deinit(void);
FLEXI_EXPORT_AS("request_deinit") void request_deinit(void);
#endif

/* ---- header-only helpers: no call back into the host ------------------- */

#define FLEXI__ALIGN 16

/* Take n bytes from malloc and chain them so the host frees them. */
static inline void *flexi__heap_alloc(flexi_response *r, size_t n) {
  size_t hdr = (sizeof(flexi_heap_block) + FLEXI__ALIGN - 1) & ~(size_t)(FLEXI__ALIGN - 1);
  flexi_heap_block *b = (flexi_heap_block *)malloc(hdr + n);
  if (!b) return NULL;
  b->next = r->heap;
  b->size = hdr + n;
  r->heap = b;
  r->heap_bytes += hdr + n;
  return (uint8_t *)b + hdr;
}

/** Allocate n bytes (16-byte aligned) that live until the response is sent.
 * From the arena while it has room, else from malloc; NULL only when out of memory. */
static inline void *flexi_alloc(flexi_response *r, size_t n) {
  size_t need = (n + FLEXI__ALIGN - 1) & ~(size_t)(FLEXI__ALIGN - 1);
  size_t floor = (r->body == r->arena) ? r->body_len : 0;
  if (need <= r->arena_top - floor && r->arena_top >= need) {
    r->arena_top -= need;
    if (r->body == r->arena) r->body_cap = r->arena_top;
    return r->arena + r->arena_top;
  }
  return flexi__heap_alloc(r, need);
}

/* Make room for the body to hold `want` bytes. */
static inline int flexi__grow_body(flexi_response *r, size_t want) {
  size_t cap = r->body_cap * 2;
  if (cap < 4096) cap = 4096;
  if (cap < want) cap = want;
  if (r->body == r->arena) {
    uint8_t *p = (uint8_t *)malloc(cap);
    if (!p) return -1;
    if (r->body_len) memcpy(p, r->body, r->body_len);
    r->body = p;
  } else {
    uint8_t *p = (uint8_t *)realloc(r->body, cap);
    if (!p) return -1;
    r->body = p;
    r->heap_bytes -= r->body_cap;
  }
  r->heap_bytes += cap;
  r->body_cap = cap;
  return 0;
}

/** Append n bytes to the body. 0 on success, -1 when out of memory. */
static inline int flexi_write(flexi_response *r, const void *data, size_t n) {
  if (n > r->body_cap - r->body_len && flexi__grow_body(r, r->body_len + n) != 0) return -1;
  if (n) memcpy(r->body + r->body_len, data, n);
  r->body_len += n;
  return 0;
}

/** Append a NUL-terminated string to the body. */
static inline int flexi_write_str(flexi_response *r, const char *s) {
  return flexi_write(r, s, strlen(s));
}

/** Add a response header (copied into the arena). 0 on success, -1 when out of memory. */
static inline int flexi_add_header_n(flexi_response *r, const char *name, size_t name_len,
                                     const char *value, size_t value_len) {
  flexi_resp_header *h = (flexi_resp_header *)flexi_alloc(r, sizeof(flexi_resp_header) + name_len + value_len);
  if (!h) return -1;
  char *p = (char *)(h + 1);
  memcpy(p, name, name_len);
  memcpy(p + name_len, value, value_len);
  h->next = NULL;
  h->name = p;
  h->name_len = name_len;
  h->value = p + name_len;
  h->value_len = value_len;
  if (r->headers_tail) r->headers_tail->next = h; else r->headers = h;
  r->headers_tail = h;
  r->headers_len++;
  return 0;
}

/** Add a response header from NUL-terminated strings. */
static inline int flexi_add_header(flexi_response *r, const char *name, const char *value) {
  return flexi_add_header_n(r, name, strlen(name), value, strlen(value));
}

/** Set the status code (0 or unset means 200). */
static inline void flexi_set_status(flexi_response *r, int status) { r->status = status; }

/** Set a custom reason phrase (copied into the arena). */
static inline int flexi_set_reason(flexi_response *r, const char *reason, size_t len) {
  char *p = (char *)flexi_alloc(r, len);
  if (!p) return -1;
  memcpy(p, reason, len);
  r->reason = p;
  r->reason_len = len;
  return 0;
}

static inline int flexi__lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/** The first request header named `name` (case-insensitive), with its length in
 * *value_len (may be NULL); NULL when absent. The value is not NUL-terminated. */
static inline const char *flexi_request_header(const flexi_request *req, const char *name, size_t *value_len) {
  size_t n = strlen(name);
  for (size_t i = 0; i < req->headers_len; i++) {
    const flexi_header *h = &req->headers[i];
    if (h->name_len != n) continue;
    size_t j = 0;
    while (j < n && flexi__lower((unsigned char)h->name[j]) == flexi__lower((unsigned char)name[j])) j++;
    if (j == n) {
      if (value_len) *value_len = h->value_len;
      return h->value;
    }
  }
  return NULL;
}

/* ---- WASM only: the host's entry points into linear memory -------------
 *
 * Weak, like flexi_abi_version, so several translation units may include this
 * header; a plugin may define its own (strong) versions, e.g. to use another
 * allocator, as long as flexi_wasm_release frees what the helpers above took
 * from malloc.
 */
#if defined(__wasm__)
#define FLEXI__WASM_ENTRY(name) __attribute__((export_name(name), weak))

/** malloc, for the host: the request and response areas of an instance. */
FLEXI__WASM_ENTRY("flexi_wasm_alloc") void *flexi_wasm_alloc(size_t n);
FLEXI__WASM_ENTRY("flexi_wasm_alloc") void *flexi_wasm_alloc(size_t n) { return malloc(n); }

/** free, for the host: an area it no longer needs (e.g. outgrown by a request body). */
FLEXI__WASM_ENTRY("flexi_wasm_free") void flexi_wasm_free(void *p);
FLEXI__WASM_ENTRY("flexi_wasm_free") void flexi_wasm_free(void *p) { free(p); }

/** After the host has copied a response out: free its overflow body and heap
 * chain (what the native host frees with libc free). The host calls it only
 * when the response overflowed its arena, and resets the struct itself. */
FLEXI__WASM_ENTRY("flexi_wasm_release") void flexi_wasm_release(flexi_response *r);
FLEXI__WASM_ENTRY("flexi_wasm_release") void flexi_wasm_release(flexi_response *r) {
  if (r->body != r->arena) free(r->body);
  r->body = r->arena;
  r->body_len = 0;
  r->body_cap = 0;
  flexi_heap_block *b = r->heap;
  while (b) {
    flexi_heap_block *next = b->next;
    free(b);
    b = next;
  }
  r->heap = NULL;
  r->heap_bytes = 0;
}
#endif /* __wasm__ */

#ifdef __cplusplus
}
#endif

#endif /* FLEXILIB_H */
