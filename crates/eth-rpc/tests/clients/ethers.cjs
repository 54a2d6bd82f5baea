// Reads the London blocks through the endpoint with ethers v6 and checks them against what the
// Rust test wrote from the Portal data (argv[3]): each transaction rebuilt by ethers from the
// response's fields must hash to its real hash and recover its real sender; each receipt's
// fields must match; getLogs must equal a scan of the receipts ethers read.
// Usage: node ethers.cjs RPC_URL EXPECTED_JSON  (ethers found through NODE_PATH)
"use strict";
const fs = require("fs");
const { JsonRpcProvider, Network, Transaction } = require("ethers");

function check(cond, what) {
  if (!cond) throw new Error("mismatch: " + what);
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const [url, path] = process.argv.slice(2);
  const want = JSON.parse(fs.readFileSync(path, "utf8"));
  const provider = new JsonRpcProvider(url); // batches calls, as it does by default
  const network = await provider.getNetwork();
  check(network.chainId === BigInt(want.chain_id), `chain id ${network.chainId}`);
  check((await provider.getBlockNumber()) === want.head, "head");
  let txs = 0;
  const scanned = [];
  for (const wb of want.blocks) {
    const b = await provider.getBlock(wb.number, true);
    check(b.hash === wb.hash && b.number === wb.number, `block ${wb.number}`);
    check(b.parentHash === wb.parent_hash, `parent of ${wb.number}`);
    check(b.gasUsed === BigInt(wb.gas_used), `gas used of ${wb.number}`);
    check(b.prefetchedTransactions.length === wb.transactions.length, `transactions of ${wb.number}`);
    for (const [i, tx] of b.prefetchedTransactions.entries()) {
      const w = wb.transactions[i];
      const rebuilt = Transaction.from({
        type: tx.type, to: tx.to, nonce: tx.nonce, gasLimit: tx.gasLimit, data: tx.data, value: tx.value,
        chainId: tx.chainId, signature: tx.signature, accessList: tx.accessList,
        gasPrice: tx.type === 2 ? null : tx.gasPrice,
        maxFeePerGas: tx.maxFeePerGas, maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      });
      check(rebuilt.hash === w.hash, `block ${wb.number} tx ${i}: rebuilt hash ${rebuilt.hash} != ${w.hash}`);
      check(rebuilt.from === w.from, `block ${wb.number} tx ${i}: recovered sender ${rebuilt.from}`);
      check(tx.hash === w.hash && tx.from === w.from && tx.index === i, `block ${wb.number} tx ${i} fields`);
      txs++;
    }
    const one = await provider.getTransaction(wb.transactions[0].hash);
    check(one.hash === wb.transactions[0].hash && one.blockNumber === wb.number, "getTransaction");
    // Asked all at once: ethers sends them as batch requests.
    const rs = await Promise.all(wb.transactions.map((t) => provider.getTransactionReceipt(t.hash)));
    for (const [i, w] of wb.receipts.entries()) {
      const r = rs[i];
      check(r.blockHash === wb.hash && r.blockNumber === wb.number && r.index === i, `receipt ${i} place`);
      check(r.status === w.status, `receipt ${i} status`);
      check(r.cumulativeGasUsed === BigInt(w.cumulative_gas_used), `receipt ${i} cumulative gas`);
      check(r.gasUsed === BigInt(w.gas_used), `receipt ${i} gas used`);
      check(r.logsBloom === w.logs_bloom, `receipt ${i} bloom`);
      check(r.from === wb.transactions[i].from && r.to === w.to, `receipt ${i} from/to`);
      check(r.contractAddress === w.contract_address, `receipt ${i} contract address`);
      check(r.logs.length === w.logs.length, `receipt ${i} logs`);
      for (const [j, l] of r.logs.entries()) {
        const wl = w.logs[j];
        check(l.address === wl.address && l.data === wl.data && same(l.topics, wl.topics), `receipt ${i} log ${j}`);
        check(l.transactionHash === r.hash && l.blockNumber === wb.number, `receipt ${i} log ${j} place`);
        scanned.push(l);
      }
    }
  }
  const key = (l) => [l.blockNumber, l.index, l.transactionIndex, l.address, l.data, l.topics.join()].join("/");
  const first = want.blocks[0].number, last = want.blocks[want.blocks.length - 1].number;
  const getLogs = async (f) => (await provider.getLogs({ fromBlock: first, toBlock: last, ...f })).map(key);
  check(same(await getLogs({}), scanned.map(key)), "getLogs over the range");
  const counts = new Map();
  scanned.forEach((l) => counts.set(l.address, (counts.get(l.address) || 0) + 1));
  const busiest = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const topic0 = scanned.find((l) => l.address === busiest).topics[0];
  check(same(await getLogs({ address: busiest }), scanned.filter((l) => l.address === busiest).map(key)), "by address");
  check(
    same(await getLogs({ topics: [topic0] }), scanned.filter((l) => l.topics[0] === topic0).map(key)),
    "by topic",
  );
  console.log(`ok: ${want.blocks.length} blocks, ${txs} transactions, ${scanned.length} logs`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  },
);
