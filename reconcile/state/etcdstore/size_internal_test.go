package etcdstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// BenchmarkValueSizes reports the bytes etcd holds for a fleet's run, an
// inventory shard, and the whole inventory, at 10,000 nodes of four
// cards, as written (gzipped) and as JSON:
//
//	go test -run '^$' -bench ValueSizes ./reconcile/state/etcdstore
func BenchmarkValueSizes(b *testing.B) {
	const nodes = 10000
	run := &state.Run{Trigger: "schedule", Revision: fmt.Sprintf("%040x", 7), Outcome: state.OutcomeApplied}
	inv := map[string]string{}
	for i := range nodes {
		name := fleetgen.NodeName(i)
		run.Nodes = append(run.Nodes, state.NodeSummary{Name: name, State: "ok", Cards: 4, Changes: 3, Pending: i % 3})
		for k := range 4 {
			inv[fmt.Sprintf("node/%s/fpga/pac%d", name, k)] = cardDigest(i*4 + k)
		}
	}
	shards := map[string]map[string]string{}
	for card, d := range inv {
		if shards[shardOf(card)] == nil {
			shards[shardOf(card)] = map[string]string{}
		}
		shards[shardOf(card)][card] = d
	}
	var runBytes, shardBytes, invBytes int
	for b.Loop() {
		data, err := encode(run)
		if err != nil {
			b.Fatal(err)
		}
		runBytes, invBytes = len(data), 0
		for _, sh := range shards {
			data, err := encode(sh)
			if err != nil {
				b.Fatal(err)
			}
			invBytes += len(data)
		}
		shardBytes = invBytes / len(shards)
	}
	plainRun, _ := json.Marshal(run)
	plainInv, _ := json.Marshal(inv)
	b.ReportMetric(float64(runBytes), "run-bytes")
	b.ReportMetric(float64(len(plainRun)), "run-json-bytes")
	b.ReportMetric(float64(shardBytes), "shard-bytes")
	b.ReportMetric(float64(invBytes), "inventory-bytes")
	b.ReportMetric(float64(len(plainInv)), "inventory-json-bytes")
}

func cardDigest(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "card %d", i))
	return hex.EncodeToString(sum[:])
}
