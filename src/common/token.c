/*
 * token.c - token generation and hashing with OpenSSL; see token.h.
 */
#include "common/token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/util.h"

int token_generate(char *token, char *id)
{
    uint8_t raw[32], idraw[8];

    if (RAND_bytes(raw, sizeof raw) != 1 || RAND_bytes(idraw, sizeof idraw) != 1)
        return -EIO;
    memcpy(token, "clsm_", 5);
    b64url_encode(raw, sizeof raw, token + 5, TOKEN_LEN + 1 - 5);
    memcpy(id, "tok_", 4);
    hex_encode(idraw, sizeof idraw, id + 4);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

void token_hash(const char *token, size_t len, uint8_t hash[TOKEN_HASH_LEN])
{
    unsigned int n = TOKEN_HASH_LEN;
    EVP_Digest(token, len, hash, &n, EVP_sha256(), NULL);
}

int token_hash_equal(const uint8_t a[TOKEN_HASH_LEN], const uint8_t b[TOKEN_HASH_LEN])
{
    return CRYPTO_memcmp(a, b, TOKEN_HASH_LEN) == 0;
}
