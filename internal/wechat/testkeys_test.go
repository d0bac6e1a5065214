package wechat

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"time"
)

// Fixed test keys. The PEM label is "TESTING KEY" so that secret scanners
// leave them alone; testingKey turns it back into "PRIVATE KEY". They are
// fixed (not generated) because the committed fuzz corpus is signed with
// platformKey.
const merchantKeyPEM = `-----BEGIN TESTING KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC6zU4X6kO/r1FT
v7QN8tnX1matF1a33L43oQj4v+qNP1d1GCXa2JbE6nOP/5BdrNahinX6EWjSTQbm
KxMe+OyAerGOoZynm3FFxx6y8Yjg0Zf6mnwzyLOq6v1iOF9mUjyczdYJqg30RPmV
TJotyxAXetCDphu+90vFwVERkgrpu6hetisraSuh3UTCcsT0WJKe8kPd6nHbg44W
dh9FEhSauvtaFYtS8Bc+Bu+H7x3/Ths5GExX2G1dsVU/GnMla+dd2jGSusYsDbC/
NBK4kzeEnKY7oF1UFOAb0R6bTStYW1n1I0jE1HVWfGXsY9RaTboPdxUg3//AT5Mi
N2W+62DJAgMBAAECggEAWM4Jdi0UkCgUja/xNUBid82hemBCBZ6Xf3K7BSaXpxaZ
yTz1ohiddHfRAIAKbb4hOyLL+1oTbwbXZMzNhkfohxvNFXWXN8caDoYe/gr9e4Oo
sKaIrUWYxIR6eRs7nzUxQ4pHWsjRYXL5BBUqpuKGf+MPBccOIbcG+rhwhd3b+kk9
4e8KtkV/aOMsOCC3Tp3+RH85IC97byXBDPai5/Vghid1RRsHb5qmZ/qYixrrqncX
exGh9otXosrsUR4vBpfKf2G8j1hYqVUHVwcjGlOUn29nKGUFVqh1WN2yCak4YCjU
1K7D0f9TCFUgA/PjtTv2phlRZzd0JJ4pwcTVrU100QKBgQD+0VIpGG1UJBf3WUFu
MLpGQMxUSZiJ1B7bkUCC3ynJeyvVZpwyG0Vmqj3diHR74m1feov2RAzzq6+Wzbai
ivHWqvFoacWt51+OKxwD+MBpY/NhijW+8Hgh1rTqTbd5+e4ax0fOhzW2ratqdben
aRYafuJlVxv8D6oabd2VfqEUkwKBgQC7qzF8hnnnvaSGaGVwAujEcVzxEDCuW9n2
9a6xiwMCn3G8tO0JEP+JFSQj3RJjwMMjIC+95vyPgFtYp2cI3Xgd+98wazWlMAaj
1+ksBYt+I0Hp4jB+8CtJatllHZrvT8IZ1HZ5Ny9qjlMImfjsJwXljeLQt2LVFY/C
hibPBHrKswKBgGqq4QPG7+0q9sVaHaOszi0ebupRrIL1wr0S/rhKBsoKv3yjaXso
I1MorKERwAEj9bjkKba7IdjW47fzASLlmvrLsCaPMGrt0fhHX4DiHll/t5/7JSh6
rS8tG6qBQe7TirK2/P4dZ4TDCmCUSn7P5KrOtqLJZjOLsx9BImK0EWX1AoGAFLzk
KQiLLAqOxbN/khMgOaT1SkYpuvq3aUzY0xGzcXTBEsNDdj8EnddSOQxS3ecNKTKD
VA7UVd8vOOq2vgoLHfUZQrZ2JRzbfvt67rxmH7gxrnCqPzy269P81emhl1RO9J+/
v8FTYgj8L/UjxqTBSA6Xw8ygBT/utOYyH6o1D3UCgYEAy+kQul0rHfUSGMrU1trv
Ntdr8NXNeNMzi+bht5ypQkUHmrRjYUZm6fbF8c2mPSvWoQC//ocix503V9ece6TZ
HDyjY//WhK6F8BkGayTb7pdq6v+qlF0Ma/tXvoweK7GhD8fgsU0VNlcTXH4YQjFp
5JcPwYF8DWmTSgJgcBBSzkg=
-----END TESTING KEY-----`

const platformKeyPEM = `-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQCj+ygrjsq58dg5
suaSRYlv/G+NbrI5rN3hQIKGmZhg3ZmVtzMHVtDcy6Ew+nLS9DDHXp197pGxwWaB
lfkDe3oljCNlKbwgAactqTPhVnsm7yLt9EHMwTs/Rrzjl+69hWGvGawgtV3j8cn9
Ic85YAZ1B4A252Sb7voIM1PkzUpUcdemFXyJWlebuBQCMnVb7hKJeazQ92BGhX7v
ULbKkUbhCBOY27FogKHIqnNREiF4QKjzOcYa1jTh7y/IB/kbw935zGbNC/KpuKKf
lmrt/j6ZzbapIld/N6Y/NtBz1hn5oFGQYaKSMoGjNY6gpRHAMgBu2V/Y0rWaGHIh
ugI+siKlAgMBAAECggEAD63zxNp1+vqrhLTdBC5++kTGe90SUJ59ZszuziUAo358
8YpfaDu+Y+Zapt7DvPUZdu7Om1yE9Ny7yvdGpLUZVF7GgaVQdjUCQcT0j37f7rSd
/+fDpOrzGdVPOWntK5UF5qLLSSNec23KtRgXAvLyGx2Y/mb4wUpEASW7R1zz1wgW
MRLMh+7+5jW3YYMpTRqE6tiEZtvUjVOl0WVBEaYaC8UdNTKaL1imm2ZjLEFoHNOx
koCejRZGfqNCLzHWTu2nkLZB8B+IPMPd9njWbCW3oJjbdonCPiBtorBvyHesT0Xp
zxHDkSF/P05mn/mzzhDvxy7pYse4Of/Hn/mkUhKVnwKBgQDnN2foFuaas1ZzADff
I0va4zAlZLXGlLg0luH2D8E1zrDgHP3dIEq6q2C/ABFjaB8xdzdoFF4CmU612QM2
HfLWrNEmNYOrWeo7Ita8vP7nzfVZfP3YKoSPgvOrzWFA4VqDfjSv2CFjUT7YDgkU
sAJo9AxiDvaCCmR/awzA769I3wKBgQC1js8DWeYcP44c/BLxOp9Q5tYXVGOdCbpe
tV5Kd3s/6fOlNBjYTuBMjFg+qAj//SRz+8l1Qv/CzT42tp8PZQK0enpBafFLcjMT
N0R0SLoQIS+Z7IGbv4qX92SPtQrdwRCNA8B1rsTFT7X3H8fvGetViheVpgdM1wKV
WyL6mvBQ+wKBgQDeUoAuwhZqmhZ97a/LdvzxM5KP4g6HK2kT6CDNoMh/HIcmd7oC
bZJte2xDO6V8mBmmTqOQCEV86jyszkYwOwvNL87LlplMoeB/jDg+stvHuFo5+d17
hSaBd8ElaQ4ifI2z8h5nFsLD5NMwnA5PPg6TLFbb0tdkoumPOzfALLe2sQKBgFp/
a6qU9gFgoJrL/zkk6mKuHUsVsm2FetNYfj6KHfI20E6pkDTJ5D3jutzIb2wCJ1h0
ye9cTRYxrfAhyVkoFVgWsLfIchEURGcwpjt8QNpnYE3OOLCEojWriAGl0VvFr1VK
6HUAf26GlAIxYjxJZCeIJMdgMcVYax49hkr6Tg1fAoGBAOAnR1Vf4fbpa/siR2ev
C0mu+z3UvgNZq5j6L35X/hHI8e2uqXkAtW/0Ast3ZOrRd0TC1J3khgi54hK2uDVf
zmz4ZBudFRPuxnSyixeoMrDND4l7d3Gb19ltDigagy/tou3wzEOWSWW/IFjSJCCI
ukLZmKio6HlcZkOWxZaeFZwN
-----END TESTING KEY-----`

const publicModeKeyPEM = `-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC8Iz5YDKjDs4Xq
hj1yNzTFl6DauLJt1xwBjGjEspTEwUAhVAIt4kW5XON90qBDCETMJTkAOSzlP9yK
JkiNH5ZV/LRatq+6j4ofMT36OPORajAPPojT+l2R2ZSLfc0ZoSCwwZXE4uZhwS7J
P6CgxT3nHa3wExQ1HhayxXuuyJWxkpt0SpG184dOiBd6uQ0Doj+89+aYfaDWx9DK
DBSA/PnZfZB47EPE6eGEBJfj30DxPB88k5hRZJN0SpJzb1zCFBxXtFZnjCGj1s5E
drQqxJVmUaWlkxPmTWHWN/pyhx9lAxnrN+++qF2EVeAiC6QqQkHtlMlNlXQLrvIj
xkkIBSOJAgMBAAECggEAJks4J9zfxwG1+s/7FtHk1GkyDQL2EoRrx2bodkzxGgFJ
x97dGLDLR1kAVv51r18x/al/6is5F6qBfb8gGlV5GKR4o1Q2/Y606vdvaYyJCyql
gJzWZes6e3LhmOjww8w3prKohOw4P2J+XuksDT1Ihc/VNR31CYDH1vh6Xc+nJH7c
mXQG1GJ+yI9ajulYdUCbh1oIFDsL3frmWti9TAOAmoewIFmMvH4g3eEZ0DIW/h+e
Frzq85SRxQerZeRQ3P/Nv+tSzpTeTeQ82ZPF+TNzKCdle/WSD+Q4WzhJpYOSxip2
rDIkSSsab6J8mlxw6zSJ16a7LEZQf7kvBriTSvhgpwKBgQDw8+hP2rcS00WvXLgm
05oQG3w+rsxVsxf09VL3iXi2ZWewcpZi9uj7Ifi5y3EIa1c5SFIMlmYvduN7BY0b
Avwy3wQtyYu+Ak9ksc3Vwu2HtzxC+omXNVBD6wn4FwnZvnkfSLO7rIkOnstwhkXw
5xqfiJrqSGYvnEhAcNLtx9XwfwKBgQDH4vxCtkvt7nOU6e4kcRawbFd2eLPQtYjM
YJr69wWDchV/dEwWydxfUNKsn+cN2POCGwC27gDZlOEhFz3LKJCK6ZkCg9mp52S4
RQd4bx/i8XvakUMn7zrPw5N5qa3qgd6puNRk1FkjfckSPKt4Xx369TSeWwvEoZKl
iJ9lH6ln9wKBgQCyInA2USkVptIW4kJWmguFKvzAzrPMC9qDQ7cxwBVZK0DsJtrd
kVMPDr92hFwtcEYM2FWobqxfHNLyiVkXhi5zYYMSYrWIJOcTN4xII5M9yY6oqdZ8
znJns+Ur38RtkS60nSgbcGPnRih7KRmeDw0UsoZs/FdnjW+xDHg0SI/2+wKBgQC0
E7gz2cu6BRK327AhwIgyVMjPAJrusj0V8wpsglLDQuo/MuTBuwYAEO5beotMHGH0
mqMgKnc1jjzr9OZEurzNiPnCHEriGIbSw82hIGvXprpwBGI9/fY76vRXrRfzpyCU
QuGGHRBZOx8EgQfxn6+AwZuv9lI5yV42J0mCbu3NrQKBgFs3dSc+tvC2a0CWR8Yn
yaw21AhWk+E3jdblN8v6pAD3jqpTYnPrELVOY9Q1qv4fM+YI+rdrpKPpH8jO/WBS
vfdlyH599MQDMN/v9Tr692w+S+VsXGzgQMnhiWO67Aht7e8CvO8fqc+ZHHp4EZpf
SuhdTCp3DR9p3bB0ILTnKyWw
-----END TESTING KEY-----`

func testingKey(s string) string { return strings.ReplaceAll(s, "TESTING KEY", "PRIVATE KEY") }

const (
	testMchID         = "1900000109"
	testMchSerial     = "3775B6A45ACD588826D15E583A95F5DD0A2A4D8A"
	platformSerial    = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
	rotatedSerial     = "6A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
	testPublicKeyID   = "PUB_KEY_ID_0114232134912410000000000000000000"
	testAPIv3KeyChars = "0123456789abcdef0123456789ABCDEF"
)

var (
	merchantKey   = mustKey(merchantKeyPEM)
	platformKey   = mustKey(platformKeyPEM)
	publicModeKey = mustKey(publicModeKeyPEM)
	platformCert  = mustCert(platformKey, platformSerial, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	rotatedCert   = mustCert(publicModeKey, rotatedSerial, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	testAPIv3Key  = []byte(testAPIv3KeyChars)
)

func mustKey(s string) *rsa.PrivateKey {
	b, _ := pem.Decode([]byte(testingKey(s)))
	if b == nil {
		panic("test key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
}

// mustCert makes a self-signed certificate for key whose serial, in
// upper-case hex, is serialHex.
func mustCert(key *rsa.PrivateKey, serialHex string, notBefore time.Time) *x509.Certificate {
	serial, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		panic("test cert: bad serial " + serialHex)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Tenpay.com Root CA (test)"},
		NotBefore:    notBefore,
		NotAfter:     notBefore.AddDate(5, 0, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}
