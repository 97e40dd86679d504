// Package serviceaccount issues and validates ServiceAccount tokens: JWTs
// signed with the cluster's service-account key, bound to audiences, an
// expiry and optionally a Pod, Secret or Node, with upstream's
// `kubernetes.io` private claims. It also renders the OpenID Connect
// discovery document and key set that let other parties verify them.
package serviceaccount

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/util/keyutil"
)

// rsaKeyBits is the size of the signing key created on first start, as
// kubeadm's sa.key.
const rsaKeyBits = 2048

// PublicKey is a verification key with its key ID.
type PublicKey struct {
	KeyID string
	Key   crypto.PublicKey
}

// EnsureSigningKey loads the private key in path, creating an RSA-2048 key
// there (PEM, mode 0600) when the file does not exist.
func EnsureSigningKey(path string) (crypto.Signer, error) {
	if _, err := os.Stat(path); err == nil {
		return LoadSigningKey(path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, err
	}
	data, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Write then rename, so that a crash never leaves half a key behind.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadSigningKey reads a PEM private key (RSA or ECDSA) that can sign tokens.
func LoadSigningKey(path string) (crypto.Signer, error) {
	key, err := keyutil.PrivateKeyFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading service account signing key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("service account signing key %s is a %T; want an RSA or ECDSA private key", path, key)
}

// LoadPublicKeys reads every public key of the PEM files (public keys,
// private keys or certificates), as upstream's --service-account-key-file.
func LoadPublicKeys(files []string) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for _, f := range files {
		found, err := keyutil.PublicKeysFromFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading service account key file: %w", err)
		}
		for _, k := range found {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// PublicKeys pairs each key (public, or private whose public half is taken)
// with its key ID, dropping duplicates.
func PublicKeys(keys ...any) ([]PublicKey, error) {
	var out []PublicKey
	seen := map[string]bool{}
	for _, k := range keys {
		if private, ok := k.(interface{ Public() crypto.PublicKey }); ok {
			k = private.Public()
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, PublicKey{KeyID: id, Key: k})
	}
	return out, nil
}

// KeyID derives a key ID from a public key as upstream does: the unpadded
// base64url SHA-256 of its PKIX DER form. It does not reveal the key.
func KeyID(public crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return "", fmt.Errorf("serializing public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
