//! Talking to `nodestore serve --rpc` from the CLI tests: start it, call it, stop it.

/// `POST /` of JSON-RPC `method` with `params` to `addr`: the reply's `result` (panics on an
/// error reply).
pub(crate) fn call(addr: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let reply = super::json(out.split_once("\r\n\r\n").map_or("", |(_, b)| b).as_bytes());
    assert!(reply.get("error").is_none(), "{method}: {reply}");
    reply["result"].clone()
}

/// `nodestore serve` with `args` (after the global ones) until it is ready: the child, the
/// address of its JSON-RPC endpoint, and a thread returning the rest of its log.
pub(crate) fn serve_rpc(
    mut command: std::process::Command,
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let mut serve = command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let (mut seen, mut addr) = (Vec::new(), None);
    for l in lines.by_ref().map_while(Result::ok) {
        if let Some(a) = l.split("JSON-RPC (read-only) on http://").nth(1) {
            addr = Some(a.split_whitespace().next().unwrap().to_owned());
        }
        seen.push(l.clone());
        if l.contains("Ctrl-C to stop") {
            break;
        }
    }
    let addr = addr.unwrap_or_else(|| panic!("no JSON-RPC endpoint: {}", seen.join("\n")));
    (serve, addr, std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n")))
}

/// Stops `serve` with Ctrl-C: it must exit cleanly.
pub(crate) fn interrupt(mut serve: std::process::Child, log: std::thread::JoinHandle<String>) {
    rustix::process::kill_process(rustix::process::Pid::from_child(&serve), rustix::process::Signal::INT).unwrap();
    let status = serve.wait().unwrap();
    let log = log.join().unwrap();
    assert!(status.success(), "serve exited with {status}: {log}");
    assert!(!log.contains("panicked"), "{log}");
}
