// Package e2e holds the end-to-end tests of loopgate: whole paths through
// the real services that `make test` starts (Apache Kafka, the ClickHouse
// server, libchdb) and the embedded ones, wired as cmd/loopgate wires them.
// It has no non-test code.
package e2e
