package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/papayd/papayd/internal/db"
)

// Modes.
const (
	ModeSandbox = "sandbox"
	ModeLive    = "live"
)

// Config is papayd's whole configuration. Every field has a flag and a
// PAPAYD_ environment variable; defaults live in ParseConfig only. Secrets
// (keys) are read from files and never held here.
type Config struct {
	Mode     string
	GRPCAddr string
	HTTPAddr string
	DataDir  string
	// DatabaseURL, when set (postgres://...), is the PostgreSQL database
	// several replicas share; empty: SQLite in DataDir.
	DatabaseURL string
	// Replica names this process among the replicas on one database (the
	// owner of its leases); LeaseTTL is how long a lease of a replica that
	// stopped renewing it lasts.
	Replica  string
	LeaseTTL time.Duration
	LogLevel string
	// LogFormat is "text" or "json".
	LogFormat       string
	ShutdownTimeout time.Duration
	// RecordCache bounds the in-memory cache of agreements and of charges
	// (each); 0 turns it off.
	RecordCache int

	// WeChat Pay (live mode; in sandbox mode they default from the sandbox).
	WeChatBaseURL          string
	WeChatTimeout          time.Duration
	SPMchID                string
	SPAppID                string
	SubMchID               string
	SubAppID               string
	MchCertSerial          string
	MchPrivateKeyFile      string
	APIv3KeyFile           string
	WeChatPayCertFile      string
	WeChatPayPublicKeyFile string
	WeChatPayPublicKeyID   string
	NotifyURL              string
	// WeChatCAFile holds extra CA certificates (PEM) trusted, besides the
	// system's, for WeChatBaseURL: a corporate TLS proxy's.
	WeChatCAFile         string
	SessionTTL           time.Duration
	MerchantCategoryCode string

	// Reconciler.
	ReconcileInterval   time.Duration
	ReconcileFirstCheck time.Duration
	EventRetention      time.Duration
	ReconcileTimeScale  float64
	ChargeUnpaidTimeout time.Duration
	ChargeInFlight      time.Duration
	FinalRechecks       []time.Duration
	AgreementRecheck    time.Duration

	// WebhookRetrySchedule is the delay before each attempt of a webhook
	// delivery, the first included.
	WebhookRetrySchedule []time.Duration
	// RefundSpacing is how long after a send of one of a charge's refunds
	// the next may be sent; RefundAbnormalCheck how often an ABNORMAL
	// refund is queried.
	RefundSpacing       time.Duration
	RefundAbnormalCheck time.Duration

	// WebhookInFlight bounds the webhook attempts under way at once to one
	// endpoint.
	WebhookInFlight int

	// WeChatQueryRate and WeChatQueryBurst bound this process's queries of
	// WeChat, per endpoint (order query, contract query, refund query); a refresh beyond
	// them serves the local record, flagged not refreshed.
	WeChatQueryRate  float64
	WeChatQueryBurst int
	// VerifyQPS bounds the queries of `papayd verify`, a second.
	VerifyQPS float64
	// MaxChargeAmount overrides the bound of one charge, in minor units, by
	// currency (service.DefaultMaxChargeAmount for the others).
	MaxChargeAmount map[string]int64

	// Sandbox mode only.
	SandboxAddr      string
	SandboxTimeScale float64

	// NotifyAddr, when set, is a listener that serves only
	// /wechatpay/notify (the one path WeChat must reach); the HTTP port then
	// no longer serves it. Empty: the HTTP port serves it.
	NotifyAddr string
	// HTTPReadTimeout bounds reading a whole request (headers and body) on
	// every HTTP listener; HTTPIdleTimeout closes a keep-alive connection
	// without a request for that long.
	HTTPReadTimeout time.Duration
	HTTPIdleTimeout time.Duration
	// GRPCMaxConcurrentStreams is how many calls one gRPC connection may
	// have open.
	GRPCMaxConcurrentStreams int
	// HTTP port guards (REST API, sandbox control API, /openapi.json).
	// CORSOrigins are the browser origins allowed to call the API;
	// AllowedHosts the Host headers served (empty: the HTTP listener's
	// address, localhost, 127.0.0.1 and [::1]).
	CORSOrigins  []string
	AllowedHosts []string
	// Auth is AuthKeys (callers present an API key), AuthMTLS (callers
	// present an API key or a client certificate naming one; needs
	// TLSClientCAFile) or AuthNone (every caller may do everything); empty
	// means the mode's default (keys in live mode, none in sandbox mode). KeyRate is the calls a second of a
	// key without a rate of its own.
	Auth    string
	KeyRate float64

	// AdminAddr serves /metrics and /debug/pprof/ only; empty: no admin
	// listener.
	AdminAddr string
	// TLSCertFile and TLSKeyFile, when set, serve gRPC and the HTTP port
	// over TLS; a renewed pair is picked up without a restart.
	// TLSClientCAFile, when set, requires client certificates it signed
	// (mTLS) on both.
	TLSCertFile     string
	TLSKeyFile      string
	TLSClientCAFile string
}

// Authentication settings (PAPAYD_AUTH).
const (
	AuthKeys = "keys"
	AuthMTLS = "mtls"
	AuthNone = "none"
)

// setting binds one Config field to a flag and an environment variable.
type setting struct {
	flag, env, def, usage string
	set                   parser
}

// parser sets a Config field from its text; typ names the value's type in
// the usage (-shutdown-timeout duration).
type parser struct {
	typ string
	set func(string) error
}

func (c *Config) settings() []setting {
	str := func(p *string) parser { return parser{"string", func(v string) error { *p = v; return nil }} }
	dur := func(p *time.Duration) parser {
		return parser{"duration", func(v string) error {
			d, err := time.ParseDuration(v)
			if err == nil && d <= 0 {
				err = errors.New("must be positive")
			}
			*p = d
			return err
		}}
	}
	positiveFloat := func(p *float64) parser {
		return parser{"float", func(v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil && !(f > 0) {
				err = errors.New("must be positive")
			}
			*p = f
			return err
		}}
	}
	// durList parses a comma list of durations, each positive, or not
	// negative when zeroOK.
	durListOf := func(p *[]time.Duration, zeroOK bool) parser {
		return parser{"durations", func(v string) error {
			*p = nil
			for _, f := range strings.Split(v, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(f))
				switch {
				case err == nil && d < 0:
					err = errors.New("must not be negative")
				case err == nil && d == 0 && !zeroOK:
					err = errors.New("must be positive")
				}
				if err != nil {
					return fmt.Errorf("%q: %w", f, err)
				}
				*p = append(*p, d)
			}
			return nil
		}}
	}
	durList := func(p *[]time.Duration) parser { return durListOf(p, false) }
	amounts := func(p *map[string]int64) parser {
		return parser{"amounts", func(v string) error {
			*p = nil
			if v == "" {
				return nil
			}
			*p = map[string]int64{}
			for _, f := range strings.Split(v, ",") {
				cur, n, ok := strings.Cut(strings.TrimSpace(f), "=")
				total, err := strconv.ParseInt(n, 10, 64)
				if !ok || err != nil || total <= 0 || len(cur) != 3 || strings.ToUpper(cur) != cur {
					return fmt.Errorf("%q: want CURRENCY=MINOR_UNITS, such as HKD=500000", f)
				}
				(*p)[cur] = total
			}
			return nil
		}}
	}
	nonNegativeInt := func(p *int) parser {
		return parser{"int", func(v string) error {
			n, err := strconv.Atoi(v)
			if err == nil && n < 0 {
				err = errors.New("must not be negative")
			}
			*p = n
			return err
		}}
	}
	positiveInt := func(p *int) parser {
		return parser{"int", func(v string) error {
			n, err := strconv.Atoi(v)
			if err == nil && (n <= 0 || n > math.MaxUint32) {
				err = errors.New("must be positive (and fit 32 bits)")
			}
			*p = n
			return err
		}}
	}
	strList := func(p *[]string) parser {
		return parser{"list", func(v string) error {
			*p = nil
			for _, f := range strings.Split(v, ",") {
				if f = strings.TrimSpace(f); f != "" {
					*p = append(*p, f)
				}
			}
			return nil
		}}
	}
	return []setting{
		{"mode", "PAPAYD_MODE", ModeSandbox, "sandbox (built-in WeChat Pay simulator) or live", str(&c.Mode)},
		{"grpc-addr", "PAPAYD_GRPC_ADDR", "127.0.0.1:9090", "gRPC listen address", str(&c.GRPCAddr)},
		{"http-addr", "PAPAYD_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address: REST gateway, /wechatpay/notify, /healthz, /openapi.json, sandbox control API", str(&c.HTTPAddr)},
		{"data-dir", "PAPAYD_DATA_DIR", "./papayd-data", "directory of the SQLite database (and sandbox keys)", str(&c.DataDir)},
		{"database-url", "PAPAYD_DATABASE_URL", "", "PostgreSQL database shared by the replicas, postgres://user:password@host:5432/name?sslmode=verify-full&pool_max_conns=20 (empty: SQLite in PAPAYD_DATA_DIR)", str(&c.DatabaseURL)},
		{"replica", "PAPAYD_REPLICA", "", "name of this replica among those on one database, the holder of its leases (empty: the host name, the process id and a random suffix)", str(&c.Replica)},
		{"lease-ttl", "PAPAYD_LEASE_TTL", "2m", "how long work a replica claimed (due records, a webhook endpoint) stays claimed if it stops renewing it: how long a dead replica's work waits", dur(&c.LeaseTTL)},
		{"log-level", "PAPAYD_LOG_LEVEL", "info", "debug, info, warn or error", str(&c.LogLevel)},
		{"log-format", "PAPAYD_LOG_FORMAT", "text", "text or json", str(&c.LogFormat)},
		{"shutdown-timeout", "PAPAYD_SHUTDOWN_TIMEOUT", "10s", "how long a graceful shutdown may take", dur(&c.ShutdownTimeout)},
		{"record-cache", "PAPAYD_RECORD_CACHE", strconv.Itoa(db.DefaultCacheRecords), "agreements, and charges, kept in memory for reads (each; about 1.4 KiB a record; 0: off)", nonNegativeInt(&c.RecordCache)},
		{"wechatpay-base-url", "PAPAYD_WECHATPAY_BASE_URL", "https://apihk.mch.weixin.qq.com", "WeChat Pay Global API base URL (live mode)", str(&c.WeChatBaseURL)},
		{"wechatpay-timeout", "PAPAYD_WECHATPAY_TIMEOUT", "10s", "deadline of one call to WeChat Pay", dur(&c.WeChatTimeout)},
		{"sp-mchid", "PAPAYD_SP_MCHID", "", "service provider merchant id", str(&c.SPMchID)},
		{"sp-appid", "PAPAYD_SP_APPID", "", "service provider AppID", str(&c.SPAppID)},
		{"sub-mchid", "PAPAYD_SUB_MCHID", "", "default sub-merchant id (a request may name another)", str(&c.SubMchID)},
		{"sub-appid", "PAPAYD_SUB_APPID", "", "default sub-merchant AppID", str(&c.SubAppID)},
		{"mch-cert-serial", "PAPAYD_MCH_CERT_SERIAL", "", "serial number of the merchant API certificate", str(&c.MchCertSerial)},
		{"mch-private-key-file", "PAPAYD_MCH_PRIVATE_KEY_FILE", "", "merchant API private key, PKCS#8 or PKCS#1 PEM", str(&c.MchPrivateKeyFile)},
		{"apiv3-key-file", "PAPAYD_APIV3_KEY_FILE", "", "file holding the 32-byte APIv3 key", str(&c.APIv3KeyFile)},
		{"wechatpay-cert-file", "PAPAYD_WECHATPAY_CERT_FILE", "", "WeChat Pay platform certificate PEM", str(&c.WeChatPayCertFile)},
		{"wechatpay-public-key-file", "PAPAYD_WECHATPAY_PUBLIC_KEY_FILE", "", "WeChat Pay public key PEM (public-key mode)", str(&c.WeChatPayPublicKeyFile)},
		{"wechatpay-public-key-id", "PAPAYD_WECHATPAY_PUBLIC_KEY_ID", "", "WeChat Pay public key id, PUB_KEY_ID_...", str(&c.WeChatPayPublicKeyID)},
		{"notify-url", "PAPAYD_NOTIFY_URL", "", "public URL of /wechatpay/notify (sandbox: derived from the HTTP address)", str(&c.NotifyURL)},
		{"session-ttl", "PAPAYD_SESSION_TTL", "1h", "default lifetime of a signing session", dur(&c.SessionTTL)},
		{"merchant-category-code", "PAPAYD_MERCHANT_CATEGORY_CODE", "", "default merchant category code (MCC) of charges (sandbox: 5999)", str(&c.MerchantCategoryCode)},
		{"reconcile-interval", "PAPAYD_RECONCILE_INTERVAL", "1s", "how often the reconciler looks for due records", dur(&c.ReconcileInterval)},
		{"event-retention", "PAPAYD_EVENT_RETENTION", "720h", "how long events are kept; a cursor older than the oldest kept is EVENT_CURSOR_EXPIRED", dur(&c.EventRetention)},
		{"reconcile-first-check", "PAPAYD_RECONCILE_FIRST_CHECK", "5s", "delay before a new PENDING agreement or charge is first queried", dur(&c.ReconcileFirstCheck)},
		{"reconcile-time-scale", "PAPAYD_RECONCILE_TIME_SCALE", "1", "multiplier of the reconciler's backoff schedule (WeChat's callback schedule) and of the final-recheck delays", positiveFloat(&c.ReconcileTimeScale)},
		{"charge-unpaid-timeout", "PAPAYD_CHARGE_UNPAID_TIMEOUT", "30m", "a charge still unpaid this long after it was last sent is closed", dur(&c.ChargeUnpaidTimeout)},
		{"charge-in-flight", "PAPAYD_CHARGE_IN_FLIGHT", "2m", "how long after it was sent WeChat may still execute a deduction: a close that found no order stays CLOSING that long (keep it above the WeChat deadline plus how long WeChat may hold a request)", dur(&c.ChargeInFlight)},
		{"final-recheck", "PAPAYD_FINAL_RECHECK", "10m,24h", "after these delays a final charge or an EXPIRED agreement is queried again, once each", durList(&c.FinalRechecks)},
		{"agreement-recheck", "PAPAYD_AGREEMENT_RECHECK", "24h", "how often a SIGNED agreement is queried again", dur(&c.AgreementRecheck)},
		{"max-charge-amount", "PAPAYD_MAX_CHARGE_AMOUNT", "", "bound of one charge by currency, in minor units, such as HKD=500000,USD=100000 (default: about USD 15,000 in each currency)", amounts(&c.MaxChargeAmount)},
		{"wechatpay-query-rate", "PAPAYD_WECHATPAY_QUERY_RATE", "100", "queries of WeChat Pay a second, per endpoint (order query, contract query, refund query); a refresh beyond it serves the local record flagged RATE_LIMITED", positiveFloat(&c.WeChatQueryRate)},
		{"wechatpay-query-burst", "PAPAYD_WECHATPAY_QUERY_BURST", "20", "queries of WeChat Pay at once, per endpoint, above the rate", positiveInt(&c.WeChatQueryBurst)},
		{"verify-qps", "PAPAYD_VERIFY_QPS", "10", "queries a second of papayd verify (live mode)", positiveFloat(&c.VerifyQPS)},
		{"sandbox-addr", "PAPAYD_SANDBOX_ADDR", "127.0.0.1:0", "listen address of the simulated WeChat Pay API (sandbox mode)", str(&c.SandboxAddr)},
		{"sandbox-time-scale", "PAPAYD_SANDBOX_TIME_SCALE", "1", "multiplier of the sandbox's notification retry delays", positiveFloat(&c.SandboxTimeScale)},
		{"notify-addr", "PAPAYD_NOTIFY_ADDR", "", "listen address serving only /wechatpay/notify, the one path to expose to WeChat; the HTTP port then no longer serves it, and in sandbox mode the derived notify URL points here (empty: the HTTP port serves it)", str(&c.NotifyAddr)},
		{"http-read-timeout", "PAPAYD_HTTP_READ_TIMEOUT", "30s", "how long an HTTP client may take to send a whole request (headers and body)", dur(&c.HTTPReadTimeout)},
		{"http-idle-timeout", "PAPAYD_HTTP_IDLE_TIMEOUT", "60s", "how long an idle HTTP keep-alive connection stays open", dur(&c.HTTPIdleTimeout)},
		{"grpc-max-concurrent-streams", "PAPAYD_GRPC_MAX_CONCURRENT_STREAMS", "256", "calls one gRPC connection may have open at once", positiveInt(&c.GRPCMaxConcurrentStreams)},
		{"cors-origins", "PAPAYD_CORS_ORIGINS", "", "comma list of browser origins (https://console.example) allowed to call the REST API; other Origins get 403", strList(&c.CORSOrigins)},
		{"allowed-hosts", "PAPAYD_ALLOWED_HOSTS", "", "comma list of Host headers the REST API answers (host:port, or host for any port; * for any); empty: the HTTP listen address, localhost, 127.0.0.1, [::1]", strList(&c.AllowedHosts)},
		{"wechatpay-ca-file", "PAPAYD_WECHATPAY_CA_FILE", "", "extra CA certificates (PEM) trusted for the WeChat Pay base URL, besides the system's: a TLS proxy's (live mode)", str(&c.WeChatCAFile)},
		{"auth", "PAPAYD_AUTH", "", "keys (every gRPC and REST call presents an API key: authorization: Bearer <key>), mtls (a call without a key is the key named, exactly, by its verified client certificate: its first URI SAN, else its CN; needs PAPAYD_TLS_CLIENT_CA_FILE) or none (anyone who reaches the ports may do everything; live mode allows it only with the gRPC and HTTP addresses on loopback) (default: keys in live mode, none in sandbox mode)", str(&c.Auth)},
		{"key-rate", "PAPAYD_KEY_RATE", "50", "calls a second an API key may make, unless the key has its own rate", positiveFloat(&c.KeyRate)},
		{"admin-addr", "PAPAYD_ADMIN_ADDR", "127.0.0.1:9091", "listen address serving only /metrics and /debug/pprof/ (plain HTTP; keep it private; empty: off)", str(&c.AdminAddr)},
		{"tls-cert-file", "PAPAYD_TLS_CERT_FILE", "", "certificate chain (PEM) of gRPC and the HTTP port: set with PAPAYD_TLS_KEY_FILE, they serve TLS; a renewed file is picked up within seconds, without a restart", str(&c.TLSCertFile)},
		{"tls-key-file", "PAPAYD_TLS_KEY_FILE", "", "private key (PEM) of PAPAYD_TLS_CERT_FILE", str(&c.TLSKeyFile)},
		{"tls-client-ca-file", "PAPAYD_TLS_CLIENT_CA_FILE", "", "CA certificates (PEM): gRPC and the HTTP port then require a client certificate they signed (mTLS); needs PAPAYD_NOTIFY_ADDR, as WeChat Pay presents none", str(&c.TLSClientCAFile)},
		{"webhook-retry-schedule", "PAPAYD_WEBHOOK_RETRY_SCHEDULE", "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h", "delay before each attempt of a webhook delivery, the first included; its length is the number of attempts (a 2xx answer delivers, 410 Gone disables the endpoint)", durListOf(&c.WebhookRetrySchedule, true)},
		{"refund-spacing", "PAPAYD_REFUND_SPACING", "1m", "how long after a send of one of a charge's refunds the next may be sent (WeChat Pay's minute: a refund asked for sooner is recorded PENDING and sent when its time comes)", dur(&c.RefundSpacing)},
		{"refund-abnormal-check", "PAPAYD_REFUND_ABNORMAL_CHECK", "1h", "how often an ABNORMAL refund (money that could not reach the user, which a person resolves in the merchant platform) is queried", dur(&c.RefundAbnormalCheck)},
		{"webhook-in-flight", "PAPAYD_WEBHOOK_IN_FLIGHT", "8", "webhook attempts under way at once to one endpoint; they start in event order, and one that fails holds back those not started yet (1: each waits until the one before is delivered or failed)", positiveInt(&c.WebhookInFlight)},
	}
}

// emptyIsOff are the variables whose empty value turns something off that
// their default turns on: set and empty, they are empty. Any other
// variable set and empty is as if unset.
var emptyIsOff = map[string]bool{"PAPAYD_ADMIN_ADDR": true}

// ParseConfig reads flags from args and variables from lookupEnv (such as
// os.LookupEnv); a flag wins over its variable, which wins over the
// default. Positional arguments are refused.
func ParseConfig(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, error) {
	c, rest, err := ParseConfigArgs(args, lookupEnv, usage)
	if err == nil && len(rest) > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", rest[0])
	}
	return c, err
}

// ParseConfigArgs is ParseConfig that returns the positional arguments
// (for subcommands such as backup).
func ParseConfigArgs(args []string, lookupEnv func(string) (string, bool), usage io.Writer) (Config, []string, error) {
	var c Config
	fs := flag.NewFlagSet("papayd", flag.ContinueOnError)
	fs.SetOutput(usage)
	values := map[string]*string{}
	ss := c.settings()
	for _, s := range ss {
		v := s.def
		if e, set := lookupEnv(s.env); e != "" || set && emptyIsOff[s.env] {
			v = e
		}
		values[s.flag] = fs.String(s.flag, v, fmt.Sprintf("%s (env %s)", s.usage, s.env))
	}
	fs.Usage = func() { printUsage(fs.Output(), ss, values) }
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	for _, s := range ss {
		if err := s.set.set(strings.TrimSpace(*values[s.flag])); err != nil {
			return Config{}, nil, fmt.Errorf("%s (-%s): %w", s.env, s.flag, err)
		}
	}
	switch c.Mode {
	case ModeSandbox, ModeLive:
	default:
		return Config{}, nil, fmt.Errorf("PAPAYD_MODE: %q is neither %q nor %q", c.Mode, ModeSandbox, ModeLive)
	}
	if err := c.resolveAuth(); err != nil {
		return Config{}, nil, err
	}
	if err := checkDatabaseURL(c.DatabaseURL); err != nil {
		return Config{}, nil, err
	}
	if c.Mode == ModeSandbox {
		var given []string
		for _, s := range ss {
			if liveOnly[s.env] && strings.TrimSpace(*values[s.flag]) != s.def {
				given = append(given, s.env)
			}
		}
		if len(given) > 0 {
			return Config{}, nil, fmt.Errorf("PAPAYD_MODE is %q but %s %s only for live mode: "+
				"set PAPAYD_MODE=live to call WeChat Pay, or unset %s to use the built-in simulator",
				ModeSandbox, strings.Join(given, ", "), plural(len(given), "is", "are"), plural(len(given), "it", "them"))
		}
	}
	return c, fs.Args(), nil
}

// resolveAuth sets Auth to the mode's default when empty and refuses an
// unknown value, and live mode without authentication unless both the gRPC
// and the HTTP listeners are on loopback (nobody else can reach them).
func (c *Config) resolveAuth() error {
	if c.Auth == "" {
		c.Auth = AuthNone
		if c.Mode == ModeLive {
			c.Auth = AuthKeys
		}
	}
	switch c.Auth {
	case AuthKeys:
		return nil
	case AuthMTLS:
		if c.TLSClientCAFile == "" {
			return fmt.Errorf("PAPAYD_AUTH=%s needs PAPAYD_TLS_CLIENT_CA_FILE: without client certificates there is nothing to authenticate "+
				"a call without a key by; set PAPAYD_TLS_CLIENT_CA_FILE (and PAPAYD_TLS_CERT_FILE, PAPAYD_TLS_KEY_FILE) or PAPAYD_AUTH=%s", AuthMTLS, AuthKeys)
		}
		return nil
	case AuthNone:
	default:
		return fmt.Errorf("PAPAYD_AUTH: %q is none of %q, %q and %q", c.Auth, AuthKeys, AuthMTLS, AuthNone)
	}
	if c.Mode == ModeLive && !(isLoopback(c.GRPCAddr) && isLoopback(c.HTTPAddr)) {
		return fmt.Errorf("PAPAYD_AUTH=%s is refused in live mode unless PAPAYD_GRPC_ADDR (%q) and PAPAYD_HTTP_ADDR (%q) "+
			"are both loopback addresses: set PAPAYD_AUTH=%s and give callers API keys (papayd keys)",
			AuthNone, c.GRPCAddr, c.HTTPAddr, AuthKeys)
	}
	return nil
}

// isLoopback reports whether the listen address addr (host:port) is on a
// loopback interface only: an empty host (every interface) is not.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// usageHeader begins `papayd -h`: what papayd is, and its subcommands.
const usageHeader = `papayd serves WeChat Pay Global auto-debit contracts and charges over gRPC and REST.

Usage:
  papayd [flags]               serve (sandbox mode, a built-in WeChat Pay simulator, unless -mode live)
  papayd backup [flags] DEST   write a consistent copy of the SQLite database, safe while papayd runs
  papayd migrate [flags]       apply the database's migrations and exit (papayd also applies them at start)
  papayd verify [flags]        compare every record with WeChat Pay, read-only (live mode)
  papayd keys [flags] create|list|revoke ...   manage API keys (see papayd keys)
  papayd audit [flags] [list -resource R -key-id K -limit N]   print the audit trail, newest first
  papayd version               print papayd's version, VCS revision and Go version (also -version)

Every flag has an environment variable (named after it); a flag wins over its variable.

Flags:
`

// printUsage writes usageHeader and the flags, in the order of settings,
// each with its type and its value before the command line (the default,
// or its environment variable's).
func printUsage(w io.Writer, ss []setting, values map[string]*string) {
	var b strings.Builder
	b.WriteString(usageHeader)
	for _, s := range ss {
		fmt.Fprintf(&b, "  -%s %s\n    \t%s (env %s)", s.flag, s.set.typ, s.usage, s.env)
		if v := *values[s.flag]; v != "" {
			if s.set.typ == "string" {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(&b, " (default %s)", v)
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

// liveOnly are the settings that mean WeChat Pay itself: given (differing
// from its default) in sandbox mode, one is refused rather than ignored, so
// that a live configuration missing PAPAYD_MODE=live does not run against
// the simulator. Sandbox mode uses, and so allows, the merchant defaults
// (PAPAYD_SP_APPID, PAPAYD_SUB_MCHID, PAPAYD_SUB_APPID,
// PAPAYD_MERCHANT_CATEGORY_CODE), PAPAYD_NOTIFY_URL, PAPAYD_WECHATPAY_TIMEOUT
// and the default PAPAYD_WECHATPAY_BASE_URL.
var liveOnly = map[string]bool{
	"PAPAYD_WECHATPAY_BASE_URL":        true,
	"PAPAYD_SP_MCHID":                  true,
	"PAPAYD_MCH_CERT_SERIAL":           true,
	"PAPAYD_MCH_PRIVATE_KEY_FILE":      true,
	"PAPAYD_APIV3_KEY_FILE":            true,
	"PAPAYD_WECHATPAY_CERT_FILE":       true,
	"PAPAYD_WECHATPAY_PUBLIC_KEY_FILE": true,
	"PAPAYD_WECHATPAY_PUBLIC_KEY_ID":   true,
	"PAPAYD_WECHATPAY_CA_FILE":         true,
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// durationsInMillis logs a time.Duration attribute "x" as "x_ms", in
// (fractional) milliseconds: JSON would otherwise give nanoseconds without
// a unit.
func durationsInMillis(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration())/float64(time.Millisecond))
	}
	return a
}

// NewLogger returns the process logger. In JSON, durations are logged as
// <name>_ms, in milliseconds.
func NewLogger(c Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("PAPAYD_LOG_LEVEL: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = durationsInMillis
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("PAPAYD_LOG_FORMAT: %q is neither text nor json", c.LogFormat)
}
