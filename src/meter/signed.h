/*
 * signed.h - opening the CMS SignedData in which a gateway sends its meter
 * data (docs/protocols/meter-data.md): the signature, the signer's chain to
 * the SMGW sub-CA, and that the signer is the gateway of the connection.
 */
#ifndef CLSM_SIGNED_H
#define CLSM_SIGNED_H

#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define SIGNED_MAX_BYTES (5u << 20) /* a whole CMS message */

/*
 * Verify the DER-encoded CMS SignedData 'der' and hand out its content.
 *
 * - exactly one signer, whose certificate is in the message;
 * - the signature verifies over the encapsulated content (id-data);
 * - the signer certificate verifies against 'store' now and was issued by
 *   'smgw_ca';
 * - when 'peer' is not NULL, the signer certificate is 'peer' (the TLS
 *   client certificate of the connection).
 *
 * On success returns 0, sets '*content' (malloc'd, NUL-terminated, the
 * caller frees it) and '*content_len', and copies the signer's common name
 * (the gateway id) into 'signer' (16 bytes). On failure returns -EINVAL
 * (malformed), -EACCES (signature, chain or signer refused) or -ENOMEM,
 * with the reason in 'err'. Nothing changes ownership.
 */
int signed_open(const uint8_t *der, size_t len, X509_STORE *store, X509 *smgw_ca, X509 *peer,
                char signer[16], char **content, size_t *content_len, char *err, size_t errlen);

#endif
