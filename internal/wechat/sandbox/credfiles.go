package sandbox

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Files are the paths of credentials stored in a directory. Keys and the APIv3 key are
// written with mode 0600. PEM formats are those wechatpay-go's utils.Load* functions read.
type Files struct {
	MerchantKey       string // PKCS#8 "PRIVATE KEY"
	MerchantCert      string // "CERTIFICATE"
	PlatformKey       string // PKCS#8 "PRIVATE KEY"
	PlatformCert      string // "CERTIFICATE"
	PlatformPublicKey string // PKIX "PUBLIC KEY" (public-key mode)
	APIv3Key          string // 32 bytes, no newline
	IDs               string // sandbox.json: mchid, sub_mchid, sp_appid, sub_appid, public_key_id
}

// FilesIn returns the credential file paths inside dir.
func FilesIn(dir string) Files {
	return Files{
		MerchantKey:       filepath.Join(dir, "merchant_key.pem"),
		MerchantCert:      filepath.Join(dir, "merchant_cert.pem"),
		PlatformKey:       filepath.Join(dir, "platform_key.pem"),
		PlatformCert:      filepath.Join(dir, "platform_cert.pem"),
		PlatformPublicKey: filepath.Join(dir, "platform_public_key.pem"),
		APIv3Key:          filepath.Join(dir, "apiv3_key"),
		IDs:               filepath.Join(dir, "sandbox.json"),
	}
}

// all lists the paths; IDs comes last because it is written last.
func (f Files) all() []string {
	return []string{f.MerchantKey, f.MerchantCert, f.PlatformKey, f.PlatformCert,
		f.PlatformPublicKey, f.APIv3Key, f.IDs}
}

// idsFile is the content of sandbox.json.
type idsFile struct {
	MchID       string `json:"mchid"`
	SubMchID    string `json:"sub_mchid"`
	SPAppID     string `json:"sp_appid"`
	SubAppID    string `json:"sub_appid,omitempty"`
	PublicKeyID string `json:"public_key_id"`
}

// LoadOrCreateCredentials loads the credentials stored in dir, or, when dir holds none of
// the files, creates fresh ones and writes them there. A directory holding only some of
// the files is an error (nothing is overwritten).
func LoadOrCreateCredentials(dir string) (*Credentials, error) {
	var missing []string
	for _, p := range FilesIn(dir).all() {
		_, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = append(missing, filepath.Base(p))
		case err != nil:
			return nil, fmt.Errorf("sandbox credentials: %w", err)
		}
	}
	switch len(missing) {
	case 0:
		return LoadCredentials(dir)
	case len(FilesIn(dir).all()):
		c, err := NewCredentials()
		if err != nil {
			return nil, err
		}
		if err := c.WriteFiles(dir); err != nil {
			return nil, err
		}
		return c, nil
	default:
		return nil, fmt.Errorf("sandbox credentials in %s are incomplete: missing %s",
			dir, strings.Join(missing, ", "))
	}
}

// LoadCredentials reads credentials written by WriteFiles and checks that they fit together.
func LoadCredentials(dir string) (*Credentials, error) {
	f := FilesIn(dir)
	c := &Credentials{Dir: dir}
	var err error
	if c.MerchantKey, err = readPrivateKey(f.MerchantKey); err != nil {
		return nil, err
	}
	if c.MerchantCert, err = readCertificate(f.MerchantCert); err != nil {
		return nil, err
	}
	if c.PlatformKey, err = readPrivateKey(f.PlatformKey); err != nil {
		return nil, err
	}
	if c.PlatformCert, err = readCertificate(f.PlatformCert); err != nil {
		return nil, err
	}
	pub, err := readPublicKey(f.PlatformPublicKey)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(&c.PlatformKey.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", f.PlatformPublicKey, f.PlatformKey)
	}
	apiV3Key, err := os.ReadFile(f.APIv3Key)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %w", err)
	}
	c.APIv3Key = bytes.TrimSpace(apiV3Key) // forgive an editor's trailing newline
	raw, err := os.ReadFile(f.IDs)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %w", err)
	}
	var ids idsFile
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, fmt.Errorf("sandbox credentials %s: %w", f.IDs, err)
	}
	c.MchID, c.SubMchID, c.SPAppID, c.SubAppID = ids.MchID, ids.SubMchID, ids.SPAppID, ids.SubAppID
	c.PublicKeyID = ids.PublicKeyID
	c.MerchantSerial = certSerial(c.MerchantCert)
	c.PlatformSerial = certSerial(c.PlatformCert)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("sandbox credentials in %s: %w", dir, err)
	}
	return c, nil
}

// WriteFiles writes the credentials into dir (created 0700 if needed) and sets c.Dir.
// Each file is written to a temporary name and renamed, sandbox.json last.
func (c *Credentials) WriteFiles(dir string) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	merchantKey, err := x509.MarshalPKCS8PrivateKey(c.MerchantKey)
	if err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	platformKey, err := x509.MarshalPKCS8PrivateKey(c.PlatformKey)
	if err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	platformPub, err := x509.MarshalPKIXPublicKey(c.PlatformPublicKey())
	if err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	ids, err := json.MarshalIndent(idsFile{
		MchID: c.MchID, SubMchID: c.SubMchID, SPAppID: c.SPAppID, SubAppID: c.SubAppID,
		PublicKeyID: c.PublicKeyID,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	f := FilesIn(dir)
	files := []struct {
		path string
		data []byte
		perm os.FileMode
	}{
		{f.MerchantKey, pemBlock("PRIVATE KEY", merchantKey), 0o600},
		{f.MerchantCert, pemBlock("CERTIFICATE", c.MerchantCert.Raw), 0o644},
		{f.PlatformKey, pemBlock("PRIVATE KEY", platformKey), 0o600},
		{f.PlatformCert, pemBlock("CERTIFICATE", c.PlatformCert.Raw), 0o644},
		{f.PlatformPublicKey, pemBlock("PUBLIC KEY", platformPub), 0o644},
		{f.APIv3Key, c.APIv3Key, 0o600},
		{f.IDs, append(ids, '\n'), 0o644},
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write sandbox credentials: %w", err)
	}
	for _, file := range files {
		if err := writeFileAtomic(file.path, file.data, file.perm); err != nil {
			return fmt.Errorf("write sandbox credentials: %w", err)
		}
	}
	c.Dir = dir
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readPEM(path, typ string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("sandbox credentials: %s: want a PEM %q block", path, typ)
	}
	return block.Bytes, nil
}

func readPrivateKey(path string) (*rsa.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %s: %w", path, err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sandbox credentials: %s: not an RSA key", path)
	}
	return rsaKey, nil
}

func readCertificate(path string) (*x509.Certificate, error) {
	der, err := readPEM(path, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %s: %w", path, err)
	}
	return cert, nil
}

func readPublicKey(path string) (*rsa.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("sandbox credentials: %s: %w", path, err)
	}
	rsaKey, ok := key.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sandbox credentials: %s: not an RSA key", path)
	}
	return rsaKey, nil
}
