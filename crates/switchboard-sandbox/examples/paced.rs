//! A paced latency probe for `bench/sandbox/run.sh`: one request every 1/RATE seconds, one at a
//! time. The closed-loop load generator measures the sandbox at saturation, where every call
//! waits for the pool to start the next interpreter (so it measures the start rate); at a
//! pace the pool sustains, this measures what one call costs: a fresh isolated interpreter
//! taken from the pool, the program run, the process tree killed and reaped.
//!
//! ```sh
//! cargo run --release -p switchboard-sandbox --example paced -- rest http://127.0.0.1:8001/execute 20 300
//! cargo run --release -p switchboard-sandbox --example paced -- mcp http://127.0.0.1:8004/mcp 20 300
//! cargo run --release -p switchboard-sandbox --example paced -- cold /usr/bin/python3 20 300
//! ```
//!
//! Prints one JSON object: requests, errors, latency percentiles in microseconds. The first
//! 10% of the requests warm up and are not counted.
#![allow(clippy::unwrap_used)] // A benchmark tool: a panic is the failure report.

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use serde_json::json;
use switchboard_protocol::mcp_client::{ConnectOptions, connect};

const CODE: &str = "print('hello')";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, target, rate, count] = args.as_slice() else {
        eprintln!("usage: paced rest|mcp|cold URL|PYTHON RATE_PER_SECOND REQUESTS");
        std::process::exit(2);
    };
    let rate: f64 = rate.parse().unwrap();
    let count: usize = count.parse().unwrap();
    let warmup = count / 10;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut latencies = Vec::with_capacity(count);
    let mut errors = 0usize;
    let mut first_error = None;

    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let mcp = match mode.as_str() {
        "mcp" => Some(connect(target, &ConnectOptions::default()).await.unwrap()),
        _ => None,
    };
    for i in 0..count + warmup {
        ticks.tick().await;
        let start = Instant::now();
        let outcome: Result<String, String> = match mode.as_str() {
            "rest" => match http
                .post(target)
                .json(&json!({ "code": CODE }))
                .send()
                .await
            {
                Ok(response) => response.text().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            "mcp" => {
                let Some(client) = &mcp else { unreachable!() };
                let Ok(serde_json::Value::Object(args)) =
                    serde_json::to_value(json!({ "code": CODE }))
                else {
                    unreachable!()
                };
                match client
                    .call_tool(CallToolRequestParams::new("execute_code").with_arguments(args))
                    .await
                {
                    Ok(result) => {
                        Ok(serde_json::to_string(&result.structured_content).unwrap_or_default())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            "cold" => match tokio::process::Command::new(target)
                .args(["-c", CODE])
                .output()
                .await
            {
                Ok(output) => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
                Err(e) => Err(e.to_string()),
            },
            other => panic!("unknown mode {other}"),
        };
        let elapsed = start.elapsed();
        if i < warmup {
            continue;
        }
        match outcome {
            Ok(body) if body.contains("hello") => latencies.push(elapsed.as_secs_f64() * 1e6),
            Ok(body) => {
                errors += 1;
                first_error.get_or_insert(body);
            }
            Err(error) => {
                errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies[rank - 1]
    };
    let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    println!(
        "{}",
        json!({
            "mode": mode,
            "target": target,
            "rate_per_second": rate,
            "requests": latencies.len(),
            "errors": errors,
            "first_error": first_error,
            "latency_us": {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "mean": mean, "max": pick(1.0)},
        })
    );
}
