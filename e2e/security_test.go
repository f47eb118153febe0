package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/internal/tlsconf"
)

// The users of the SASL_SSL broker. Their passwords are written to files
// the clients read (SASL.PasswordFile), as an operator would.
const (
	saslUser     = "ingest"
	saslPassword = "ingest-s3cret-pw"
	adminPW      = "admin-s3cret-pw"
)

// saslBroker is an Apache Kafka broker of the test's own whose client
// listener is SASL_SSL, with PLAIN and SCRAM-SHA-512 enabled and a
// certificate signed by a CA generated in the test.
type saslBroker struct {
	addr  string
	certs testenv.Certs
	dir   string
}

// startSASLBroker runs the Kafka that deploy/local/kafka.sh installs with a
// generated configuration: KRaft, one node; SASL_SSL for clients, a
// PLAINTEXT listener for the broker itself and one for the controller, both
// on 127.0.0.1. The SCRAM credentials are written at format time
// (kafka-storage format --add-scram), as KRaft requires.
func startSASLBroker(t *testing.T) *saslBroker {
	t.Helper()
	libs := testenv.KafkaLibs(t)
	java, err := exec.LookPath("java")
	if err != nil {
		if testenv.CI() {
			t.Fatalf("java is required under CI=true: %v", err)
		}
		t.Skipf("java not available: %v", err)
	}
	dir := t.TempDir()
	b := &saslBroker{certs: testenv.TLSCerts(t, dir), dir: dir}
	b.addr = testenv.FreeAddr(t)
	internal, controller := testenv.FreeAddr(t), testenv.FreeAddr(t)
	jaas := func(module, extra string) string {
		return fmt.Sprintf(`%s required username="admin" password="%s"%s;`, module, adminPW, extra)
	}
	props := strings.Join([]string{
		"process.roles=broker,controller",
		"node.id=1",
		"controller.quorum.voters=1@" + controller,
		"listeners=SASL_SSL://" + b.addr + ",INTERNAL://" + internal + ",CONTROLLER://" + controller,
		"advertised.listeners=SASL_SSL://" + b.addr + ",INTERNAL://" + internal,
		"listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.listener.names=CONTROLLER",
		"inter.broker.listener.name=INTERNAL",
		"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
		"listener.name.sasl_ssl.plain.sasl.jaas.config=" + jaas("org.apache.kafka.common.security.plain.PlainLoginModule",
			fmt.Sprintf(` user_admin="%s" user_%s="%s"`, adminPW, saslUser, saslPassword)),
		"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=" + jaas("org.apache.kafka.common.security.scram.ScramLoginModule", ""),
		"ssl.keystore.type=PEM",
		"ssl.keystore.location=" + b.certs.KeyCertFile,
		"ssl.truststore.type=PEM",
		"ssl.truststore.location=" + b.certs.CAFile,
		"ssl.client.auth=none",
		"log.dirs=" + filepath.Join(dir, "data"),
		"num.partitions=1",
		"offsets.topic.replication.factor=1",
		"offsets.topic.num.partitions=1",
		"transaction.state.log.replication.factor=1",
		"transaction.state.log.min.isr=1",
		"share.coordinator.state.topic.replication.factor=1",
		"share.coordinator.state.topic.min.isr=1",
		"group.initial.rebalance.delay.ms=0",
		"auto.create.topics.enable=false",
	}, "\n") + "\n"
	propsFile := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	jvm := []string{"-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true", "-cp", filepath.Join(libs, "*")}

	var id [16]byte
	rand.Read(id[:])
	clusterID := "A" + base64.RawURLEncoding.EncodeToString(id[:])[1:] // 22 characters, no leading '-'
	format := exec.Command(java, append(jvm, "kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsFile,
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=%s,password=%s]", saslUser, saslPassword),
		"--add-scram", fmt.Sprintf("SCRAM-SHA-512=[name=admin,password=%s]", adminPW))...)
	if out, err := format.CombinedOutput(); err != nil {
		t.Fatalf("kafka-storage format: %v\n%s", err, out)
	}
	testenv.Start(t, exec.Command(java, append(jvm, "kafka.Kafka", propsFile)...), "kafka-sasl-ssl.log")
	return b
}

// security is how a client of b authenticates as user with password
// (written to a file of its own).
func (b *saslBroker) security(t *testing.T, mechanism, user, password string) eventlog.Security {
	t.Helper()
	pw := filepath.Join(t.TempDir(), "kafka-password")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return eventlog.Security{
		TLS:  tlsconf.Config{Enabled: true, CAFile: b.certs.CAFile},
		SASL: eventlog.SASL{Mechanism: mechanism, Username: user, PasswordFile: pw},
	}
}

// waitReady creates a topic with sec until the broker answers (the JVM
// takes seconds to start).
func (b *saslBroker) waitReady(t *testing.T, sec eventlog.Security) {
	t.Helper()
	tc := eventlog.DefaultTopicsConfig()
	tc.Outcomes, tc.Policy, tc.DLQ, tc.Security = "ready."+suffix(), "ready.p."+suffix(), "ready.d."+suffix(), sec
	var last error
	testenv.Eventually(t, 90*time.Second, "SASL_SSL broker ready", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		last = eventlog.EnsureTopics(ctx, []string{b.addr}, tc)
		if last != nil {
			time.Sleep(200 * time.Millisecond)
		}
		return last == nil
	})
}

// TestEventPathSASLSSL runs the event path — publisher → Apache Kafka →
// ingest → ClickHouse (embedded) — against a broker that only accepts
// SASL_SSL, once with PLAIN and once with SCRAM-SHA-512: every outcome
// lands exactly once. A wrong password is refused with an error that says
// so, and neither the error nor the logs carry a password.
func TestEventPathSASLSSL(t *testing.T) {
	b := startSASLBroker(t)
	brokers := []string{b.addr}
	b.waitReady(t, b.security(t, eventlog.SASLPlain, saslUser, saslPassword))

	for _, mech := range []string{eventlog.SASLPlain, eventlog.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			const n = 3000
			sec := b.security(t, mech, saslUser, saslPassword)
			st := openStore(t, backends[1].config(t))
			tc := topicsWith(t, brokers, sec)
			publishWith(t, brokers, sec, tc.Outcomes, 0, n)
			p := startPipeline(t, brokers, tc, st, pipelineOpts{group: "e2e-sasl-" + suffix(), drain: true, security: sec})
			waitRows(t, st, n, 2*time.Minute)
			p.stop(t)
			checkExactlyOnce(t, st, n)
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		const wrong = "not-the-password-at-all"
		for _, mech := range []string{eventlog.SASLPlain, eventlog.SASLScramSHA512} {
			var logs bytes.Buffer
			d := deps.Deps{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			sec := b.security(t, mech, saslUser, wrong)
			wcfg := eventlog.DefaultWriterConfig()
			wcfg.Brokers, wcfg.Topic, wcfg.Security, wcfg.WriteTimeout = brokers, "e2e.sasl.refused", sec, 5*time.Second
			w, err := eventlog.NewWriter(wcfg, d)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = w.Write(ctx, eventlog.Message{Key: []byte("k"), Value: []byte("v")})
			cancel()
			w.Close()
			if err == nil {
				t.Fatalf("%s: write with a wrong password succeeded, want it refused", mech)
			}
			if !strings.Contains(strings.ToLower(err.Error()), "sasl authentication failed") {
				t.Errorf("%s: got %v, want an error that names the failed SASL authentication", mech, err)
			}
			tc := eventlog.DefaultTopicsConfig()
			tc.Outcomes, tc.Policy, tc.DLQ, tc.Security = "e2e.sasl.x."+suffix(), "e2e.sasl.y."+suffix(), "e2e.sasl.z."+suffix(), sec
			ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
			terr := eventlog.EnsureTopics(ctx, brokers, tc)
			cancel()
			if terr == nil || !strings.Contains(strings.ToLower(terr.Error()), "sasl authentication failed") {
				t.Errorf("%s: ensure topics with a wrong password: got %v, want a SASL authentication failure", mech, terr)
			}
			t.Logf("%s with a wrong password: write: %v; ensure topics: %v", mech, err, terr)
			for what, s := range map[string]string{"error": err.Error() + terr.Error(), "logs": logs.String()} {
				for _, pw := range []string{wrong, saslPassword} {
					if strings.Contains(s, pw) {
						t.Errorf("%s: the %s contain a password: %s", mech, what, s)
					}
				}
			}
		}
	})
}
