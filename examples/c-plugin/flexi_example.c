/*
 * The FlexiLib sample plugin's behaviour, in plain C against flexilib.h.
 *
 *   body " N"               N = number of request headers
 *   X-custom-foo: bar       on every answer
 *   x-log-this: V           V is prepended to the body
 *   x-status: N             answers with status N
 *   x-throw                 the handler fails: 500, body so far kept
 *   x-slow: MS              sleeps MS milliseconds, answers "i am slow"
 *   Host: iam...            answers "iam response"
 *   /echo...                answers "METHOD TARGET\n" followed by the request body
 */
#define _POSIX_C_SOURCE 199309L
#include <flexilib.h>
#include <stdio.h>
#include <time.h>

static long parse_long(const char *s, size_t n) {
  long v = 0;
  for (size_t i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (s[i] - '0');
  return v;
}

static int starts_with(const char *s, size_t n, const char *prefix) {
  size_t p = strlen(prefix);
  return n >= p && memcmp(s, prefix, p) == 0;
}

int handle_request(const flexi_request *req, flexi_response *resp) {
  size_t len;
  const char *v;

  if (flexi_add_header(resp, "X-custom-foo", "bar") != 0) return 1;

  if ((v = flexi_request_header(req, "x-slow", &len)) != NULL) {
    long ms = parse_long(v, len);
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
    return flexi_write_str(resp, "i am slow");
  }

  if ((v = flexi_request_header(req, "host", &len)) != NULL && starts_with(v, len, "iam"))
    return flexi_write_str(resp, "iam response");

  if (starts_with(req->target, req->target_len, "/echo")) {
    if (flexi_write(resp, req->method, req->method_len) || flexi_write(resp, " ", 1) ||
        flexi_write(resp, req->target, req->target_len) || flexi_write(resp, "\n", 1) ||
        flexi_write(resp, req->body, req->body_len))
      return 1;
    return 0;
  }

  if ((v = flexi_request_header(req, "x-log-this", &len)) != NULL && flexi_write(resp, v, len) != 0) return 1;

  char count[32];
  int n = snprintf(count, sizeof count, " %zu", req->headers_len);
  if (flexi_write(resp, count, (size_t)n) != 0) return 1;

  if ((v = flexi_request_header(req, "x-status", &len)) != NULL) flexi_set_status(resp, (int)parse_long(v, len));

  if (flexi_request_header(req, "x-throw", NULL) != NULL) return 1;
  return 0;
}
