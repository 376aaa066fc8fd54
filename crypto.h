/*
 * crypto.h: the Noise handshake, the record layer for transport packets,
 * and the long-term identity key.  libsodium provides the primitives,
 * except the record layer's AES-256-GCM, which OpenSSL's libcrypto does
 * faster (crypto.c says how much).
 *
 * Handshake: the Noise Protocol Framework, revision 34, for the patterns
 * NN, IK and XX with 25519, ChaChaPoly and BLAKE2b (p2pcat's suite,
 * CRYPTO_PROTOCOL); AESGCM, SHA256 and SHA512 are accepted too so that
 * the published test vectors of those suites can be run.  PSKs are not
 * implemented.
 *
 * Record layer: each direction has its own key from Split(), used with
 * the cipher the peers agreed on in the handshake (ChaChaPoly, or AESGCM
 * where both CPUs have AES instructions: it costs half as much there).
 * A sealed packet is  header || ciphertext || 16-byte tag.  The header is
 * the caller's (the session's) and is the AEAD's additional data; it must
 * carry the packet number, which is also the AEAD nonce (the cipher's
 * Noise nonce encoding: 4 zero bytes || 64-bit counter, little-endian for
 * ChaChaPoly, big-endian for AESGCM).  Bit 7 of the
 * header's second byte (wire.h's type) is the key phase and belongs to
 * this module: the sender rekeys (Noise Rekey()) after CRYPTO_REKEY_PKTS
 * packets, CRYPTO_REKEY_BYTES bytes or CRYPTO_REKEY_US, whichever comes
 * first, and flips the phase; the receiver follows, keeping the previous key for
 * CRYPTO_PREV_KEY_US for packets that were reordered across the change.
 * The receiver follows one change at a time: if every packet of a whole
 * key epoch (at least 2^20 packets, 1 GiB or 2 minutes) were lost, it
 * could not follow, and the session would end by its idle timeout.
 *
 * Wire layout of a sealed data packet (wire.h; built by the session):
 *   byte 0      0xE1, magic and version
 *   byte 1      type (WIRE_DATA); bit 7 = key phase (CRYPTO_HDR_PHASE)
 *   bytes 2-5   the receiver's connection id
 *   bytes 6-13  packet number, 64-bit big-endian
 *   bytes 14-   ciphertext, then the 16-byte tag
 * Bytes 0-13 are the additional data.
 *
 * Passphrase mode: CPace, a PAKE, whose output can bind a Noise handshake.
 *
 * Identity: an X25519 key pair.  The key file holds one line, the standard
 * base64 (RFC 4648 section 4, with padding: 44 characters) of the 32-byte
 * private key, then a newline: the format of `wg genkey'.  It is created
 * 0600 in a directory created 0700, and refused if it is not a regular
 * file owned by us or if group or others have any access to it.  Public
 * keys are shown and parsed in the same 44-character form; fingerprints
 * are "SHA256:" and the unpadded base64 of SHA-256(public key), as ssh
 * shows them.
 *
 * Handshake and record-layer states live in sodium_malloc'd memory
 * (guarded, wiped when freed); callers wipe their own copies of keys
 * (sodium_memzero, crypto_identity_wipe).  Functions print one diagnostic
 * where an error is found, unless noted.
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_PROTOCOL		"Noise_XX_25519_ChaChaPoly_BLAKE2b"
#define CRYPTO_KEY_LEN		32	/* X25519 keys, cipher keys */
#define CRYPTO_TAG_LEN		16	/* Poly1305's, GCM's */
#define CRYPTO_HASH_MAX		64	/* the handshake hash, BLAKE2b */
#define CRYPTO_MSG_MAX		65535	/* Noise section 3: largest message */
#define CRYPTO_KEY_B64_LEN	44	/* base64 of a key, with padding */
#define CRYPTO_FP_LEN		50	/* "SHA256:" + 43 characters */

#define CRYPTO_HDR_PHASE_BYTE	1	/* the header byte with the key phase */
#define CRYPTO_HDR_PHASE	0x80	/* key phase bit in that byte */
#define CRYPTO_REPLAY_WINDOW	2048	/* packets accepted out of order */
/* Well inside AES-GCM's limit of 2^23 packets a key (RFC 9001 §6.6). */
#define CRYPTO_REKEY_PKTS	(1ULL << 20)
#define CRYPTO_REKEY_BYTES	(1ULL << 30)
#define CRYPTO_REKEY_US		(120ULL * 1000000)
#define CRYPTO_PREV_KEY_US	(10ULL * 1000000)

/* sodium_init; 0 or -1.  Call once before anything else here. */
int crypto_init(void);
/* HMAC (RFC 2104) under key of a then b (either length may be 0), with
 * libcrypto's digest md ("SHA1", "BLAKE2B-512"), into out: outlen bytes,
 * the digest's length.  0, or -1 when libcrypto fails (out of memory, a
 * digest its policy refuses).  Needs no crypto_init. */
int crypto_hmac(const char *md, const uint8_t *key, size_t keylen, const uint8_t *a,
    size_t alen, const uint8_t *b, size_t blen, uint8_t *out, size_t outlen);

/* The ciphers (Noise sections 12.3 and 12.4), numbered as on the wire.
 * AESGCM is AES-256-GCM, offered only on CPUs with AES-NI and PCLMUL
 * (where libsodium provides it). */
enum crypto_cipher { CRYPTO_CHACHAPOLY = 1, CRYPTO_AESGCM = 2 };
/* true if cipher c can be used here. */
bool crypto_cipher_available(int c);
/* Its name in Noise protocol names ("ChaChaPoly", "AESGCM"), or NULL. */
const char *crypto_cipher_name(int c);
/* Its one name for users, in messages and P2PCAT_CIPHER
 * ("chacha20-poly1305", "aes256-gcm"), or NULL; and the cipher of such
 * a name, or 0. */
const char *crypto_cipher_label(int c);
int crypto_cipher_by_label(const char *label);
/* Noise's ENCRYPT(k, n, ad, plaintext) for cipher c (available): writes
 * len + CRYPTO_TAG_LEN bytes to out (which may be pt).  DECRYPT: ct is
 * len bytes, tag included; writes len - CRYPTO_TAG_LEN bytes to out (which
 * may be ct); 0, or -1 when not authentic. */
void crypto_encrypt(int c, const uint8_t k[CRYPTO_KEY_LEN], uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *pt, size_t len, uint8_t *out);
int crypto_decrypt(int c, const uint8_t k[CRYPTO_KEY_LEN], uint64_t n, const uint8_t *ad,
    size_t adlen, const uint8_t *ct, size_t len, uint8_t *out);

/* Handshake.  crypto_hs_new starts a handshake for protocol (a full Noise
 * name such as CRYPTO_PROTOCOL) as initiator or responder, bound to the
 * prologue.  s is our static private key (NULL when the pattern sends no
 * static key); rs the peer's static public key when the pattern needs it
 * in advance (IK's initiator), else NULL.  NULL after printing why.
 * Freed (and wiped) by crypto_hs_free, a no-op on NULL. */
struct crypto_hs;
struct crypto_hs *crypto_hs_new(const char *protocol, bool initiator,
    const void *prologue, size_t prologue_len,
    const uint8_t s[CRYPTO_KEY_LEN], const uint8_t rs[CRYPTO_KEY_LEN]);
void crypto_hs_free(struct crypto_hs *hs);
/* A copy of hs (freed by crypto_hs_free), or NULL on ENOMEM: read a
 * message that may be forged on a copy, and keep it only if it checks
 * out, so that a forgery cannot kill the handshake. */
struct crypto_hs *crypto_hs_dup(const struct crypto_hs *hs);

/* true when it is our turn to write the next handshake message. */
bool crypto_hs_our_turn(const struct crypto_hs *hs);
/* true when every handshake message has been written or read. */
bool crypto_hs_done(const struct crypto_hs *hs);

/* crypto_hs_write writes the next message carrying payload into out (cap
 * bytes) and sets *outlen.  crypto_hs_read reads the peer's next message
 * into payload (cap bytes) and sets *paylen.  Buffers must not overlap.
 * 0, or -1: out of turn, too long, a low-order key, or (read) malformed or
 * not authentic; the handshake is then dead and every further call fails.
 * They print nothing (a message may be forged): the caller logs it. */
int crypto_hs_write(struct crypto_hs *hs, const void *payload, size_t len,
    uint8_t *out, size_t cap, size_t *outlen);
int crypto_hs_read(struct crypto_hs *hs, const uint8_t *msg, size_t len,
    uint8_t *payload, size_t cap, size_t *paylen);

/* The peer's static public key once it is known (after the message that
 * carries it): 0, or -1 when not known yet.  Check it (crypto_key_equal
 * against a pinned key) before sending anything more. */
int crypto_hs_remote_static(const struct crypto_hs *hs, uint8_t rs[CRYPTO_KEY_LEN]);

/* When done: the handshake hash (for channel binding) into h, its length
 * into *hlen, and Split()'s keys: ours for sending and for receiving.  0,
 * or -1 when the handshake is not done (which kills it).  The handshake's
 * secrets are then wiped; only crypto_hs_free may follow. */
int crypto_hs_split(struct crypto_hs *hs, uint8_t h[CRYPTO_HASH_MAX], size_t *hlen,
    uint8_t send[CRYPTO_KEY_LEN], uint8_t recv[CRYPTO_KEY_LEN]);

/* Test hook: use this ephemeral private key instead of a random one. */
int crypto_test_set_ephemeral(struct crypto_hs *hs, const uint8_t e[CRYPTO_KEY_LEN]);

/* Record layer.  crypto_tx_new/crypto_rx_new copy a key from
 * crypto_hs_split (the caller wipes its copy), for cipher (enum
 * crypto_cipher); now, here and below, is CLOCK_MONOTONIC in microseconds
 * (now_us()).  NULL on ENOMEM, or EINVAL for a cipher not available.
 * Freed and wiped by crypto_tx_free/crypto_rx_free, no-ops on NULL. */
struct crypto_tx;
struct crypto_rx;
struct crypto_tx *crypto_tx_new(int cipher, const uint8_t key[CRYPTO_KEY_LEN], uint64_t now);
struct crypto_rx *crypto_rx_new(int cipher, const uint8_t key[CRYPTO_KEY_LEN]);
void crypto_tx_free(struct crypto_tx *tx);
void crypto_rx_free(struct crypto_rx *rx);

/* Seal len bytes of plain as packet number pn into out (len +
 * CRYPTO_TAG_LEN bytes; out may be plain).  hdr (hdrlen >= 2 bytes, the
 * packet's plaintext header, which must encode pn) is authenticated, after
 * its key phase bit has been set.  pn must be greater than every pn
 * sealed before and less than UINT64_MAX, so that no nonce is ever used
 * twice.  0 or -1 (bad arguments; prints nothing). */
int crypto_seal(struct crypto_tx *tx, uint64_t now, uint8_t *hdr, size_t hdrlen,
    uint64_t pn, const uint8_t *plain, size_t len, uint8_t *out);
/* The same for a plaintext in pieces, the iovcnt of iov in turn, sealed
 * from where they lie (AESGCM reads each once; ChaChaPoly gathers them in
 * out first): out gets their total length + CRYPTO_TAG_LEN bytes.  The
 * first piece may be out itself; no other may overlap out. */
struct iovec;
int crypto_sealv(struct crypto_tx *tx, uint64_t now, uint8_t *hdr, size_t hdrlen,
    uint64_t pn, const struct iovec *iov, int iovcnt, uint8_t *out);

/* Open a received packet: hdr as received (hdrlen >= 2), pn as decoded
 * from it, ct the len bytes after the header.  On success writes len -
 * CRYPTO_TAG_LEN bytes to out (out may be ct) and returns 0.  Returns -1
 * and counts the packet, printing nothing, when it is malformed, a replay,
 * older than the replay window, or not authentic; the replay window moves
 * only for authentic packets. */
int crypto_open(struct crypto_rx *rx, uint64_t now, const uint8_t *hdr, size_t hdrlen,
    uint64_t pn, const uint8_t *ct, size_t len, uint8_t *out);

struct crypto_rx_stats {
	uint64_t ok;		/* packets opened */
	uint64_t auth;		/* dropped: not authentic (or no key for its phase) */
	uint64_t replay;	/* dropped: packet number already seen */
	uint64_t old;		/* dropped: older than the replay window */
	uint64_t malformed;	/* dropped: too short, reserved packet number */
	uint64_t rekeys;	/* key phase changes followed */
};
void crypto_rx_get_stats(const struct crypto_rx *rx, struct crypto_rx_stats *st);
/* How many times the sender has rekeyed. */
uint64_t crypto_tx_rekeys(const struct crypto_tx *tx);

/* Test hook: rekey after pkts packets, bytes bytes or us microseconds. */
void crypto_test_set_limits(struct crypto_tx *tx, uint64_t pkts, uint64_t bytes,
    uint64_t us);

/* CPace (draft-irtf-cfrg-cpace-21, ristretto255 and SHA-512, with
 * initiator and responder roles), the PAKE of the passphrase mode.  Both
 * sides start with the same prs (the passphrase), ci (channel identifier)
 * and sid (session id, up to CRYPTO_CPACE_SID_MAX bytes) and get their
 * share to send, with their associated data ad, to the peer.
 * crypto_cpace_finish takes the peer's share and ad and gives the ISK,
 * equal on both sides if and only if prs, ci, sid and both messages match.
 * start returns NULL on ENOMEM or a bad sid length (printing why); finish
 * returns -1, printing nothing, when the peer's share is invalid or the
 * identity (abort the session), and can be called once.  Freed (wiped) by
 * crypto_cpace_free, a no-op on NULL. */
#define CRYPTO_CPACE_SHARE_LEN	32
#define CRYPTO_CPACE_ISK_LEN	64
#define CRYPTO_CPACE_SID_MAX	64
struct crypto_cpace;
struct crypto_cpace *crypto_cpace_start(const void *prs, size_t prslen,
    const void *ci, size_t cilen, const void *sid, size_t sidlen,
    uint8_t share[CRYPTO_CPACE_SHARE_LEN]);
int crypto_cpace_finish(struct crypto_cpace *c, bool initiator, const void *ad,
    size_t adlen, const uint8_t peer_share[CRYPTO_CPACE_SHARE_LEN],
    const void *peer_ad, size_t peer_adlen, uint8_t isk[CRYPTO_CPACE_ISK_LEN]);
void crypto_cpace_free(struct crypto_cpace *c);
/* Test hook: use scalar y (little-endian) instead of a random one; gives
 * the new share.  0, or -1 when y gives no valid share. */
int crypto_test_cpace_set_scalar(struct crypto_cpace *c, const uint8_t y[32],
    uint8_t share[CRYPTO_CPACE_SHARE_LEN]);

/* Identity.  Loads the private key in path, or creates a new one there
 * (and its directory) when path does not exist; sets *created accordingly.
 * 0, or -1 after printing why, quoting path. */
struct crypto_identity {
	uint8_t priv[CRYPTO_KEY_LEN];
	uint8_t pub[CRYPTO_KEY_LEN];
};
int crypto_load_or_create_identity(const char *path, struct crypto_identity *id,
    bool *created);
/* Wipes id. */
void crypto_identity_wipe(struct crypto_identity *id);

/* Text forms.  crypto_key_to_text writes the 44-character base64 and a
 * NUL; crypto_key_from_text accepts exactly that (no whitespace, canonical
 * padding bits): 0, or -1 without printing.  crypto_fingerprint writes
 * "SHA256:..." and a NUL. */
void crypto_key_to_text(const uint8_t key[CRYPTO_KEY_LEN], char out[CRYPTO_KEY_B64_LEN + 1]);
int crypto_key_from_text(const char *text, uint8_t key[CRYPTO_KEY_LEN]);
void crypto_fingerprint(const uint8_t pub[CRYPTO_KEY_LEN], char out[CRYPTO_FP_LEN + 1]);
/* true when text (a public key or a fingerprint, as above) names pub;
 * compared in constant time. */
bool crypto_key_matches(const char *text, const uint8_t pub[CRYPTO_KEY_LEN]);
/* Constant-time equality of two keys. */
bool crypto_key_equal(const uint8_t a[CRYPTO_KEY_LEN], const uint8_t b[CRYPTO_KEY_LEN]);

#endif
