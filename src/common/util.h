/*
 * util.h - small helpers shared by all modules: checked number parsing,
 * host:port addresses, time stamps, base64url and hex.
 *
 * All functions are pure or read only the clock; none allocates unless it says
 * so. Safe to call from any thread.
 */
#ifndef CLSM_UTIL_H
#define CLSM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Parse a whole decimal integer in [min, max]. Leading '+', spaces and trailing
 * bytes are rejected. Returns 0, -EINVAL (not a number) or -ERANGE. */
int parse_ll(const char *s, long long min, long long max, long long *out);

/* A parsed "host:port" ("127.0.0.1:8080", "[::1]:8080", "localhost:0"). */
struct hostport {
    char host[256];
    int port;
};

/* Parse 'in' into 'out'. The host must not be empty; the port is 0..65535.
 * Returns 0 or -EINVAL. */
int hostport_parse(const char *in, struct hostport *out);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t time_now_ms(void);

/* Microseconds from an arbitrary start (CLOCK_MONOTONIC), for durations. */
int64_t time_mono_us(void);

/* Format 'ms' as RFC 3339 UTC with milliseconds ("2026-11-28T18:21:30.123Z")
 * into 'buf' (at least 25 bytes). Returns buf. */
char *time_format_ms(int64_t ms, char *buf, size_t len);

#define TIME_MAX_MS 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* Parse RFC 3339 ("2026-11-28T18:21:30Z", fractional seconds and numeric
 * offsets allowed) into milliseconds. The instant must lie in 1970..9999
 * in UTC, so that time_format_ms() writes it back in the same form.
 * Returns 0 or -EINVAL. */
int time_parse_ms(const char *s, int64_t *out);

/* base64url without padding. encode writes a NUL-terminated string and returns
 * its length, or -ENOSPC. decode returns the byte count, or -EINVAL/-ENOSPC. */
int b64url_encode(const uint8_t *in, size_t n, char *out, size_t outlen);
int b64url_decode(const char *in, uint8_t *out, size_t outlen);

/* Lower-case hex of 'n' bytes into 'out' (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Copy a NUL-terminated string into a fixed buffer. Returns 0, or -ENOSPC when
 * it does not fit (then 'dst' holds an empty string). */
int str_copy(char *dst, size_t dstlen, const char *src);

#endif
