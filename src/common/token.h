/*
 * token.h - API bearer tokens: generation and hashing.
 *
 * A token is "clsm_" followed by 43 base64url characters (32 random bytes).
 * Only its SHA-256 is stored; a token is high-entropy, so a plain hash is
 * enough and a lookup costs one hash. Thread-safe.
 */
#ifndef CLSM_TOKEN_H
#define CLSM_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_LEN      48 /* "clsm_" + 43 characters */
#define TOKEN_ID_LEN   20 /* "tok_" + 16 hex digits */
#define TOKEN_HASH_LEN 32

/* Create a new token (TOKEN_LEN+1 bytes) and its id (TOKEN_ID_LEN+1 bytes).
 * Returns 0, or -EIO when the random generator fails. */
int token_generate(char *token, char *id);

/* SHA-256 of 'len' bytes of token text. */
void token_hash(const char *token, size_t len, uint8_t hash[TOKEN_HASH_LEN]);

/* Constant-time comparison of two hashes; nonzero when equal. */
int token_hash_equal(const uint8_t a[TOKEN_HASH_LEN], const uint8_t b[TOKEN_HASH_LEN]);

#endif
