#[path = "support/agent.rs"]
mod agent_support;
mod support;
use agent_support::*;
use serde_json::json;
use support::TestGateway;

#[tokio::test]
async fn explore() {
    let gw = TestGateway::start("").await;
    let mut c = Conn::connect(&gw, "c").await;
    for n in [2500u32, 2800] {
        let id = c.send("ws:e", &format!("[[tool:shell.exec {{\"command\":\"echo hi\"}}]] [[attach:image/png x.png]] [[long:{n}]]")).await;
        let o = c.outcome(id).await;
        let mut last = String::new();
        for e in &o.events {
            let n = e.event().unwrap().to_owned();
            if n != last {
                println!("{} idx {} seq {}", n, e.index, e.seq());
                last = n.clone();
            }
            if n == "context_warning" {
                println!("{}", e.value);
            }
        }
        println!("reply idx {}", o.reply.index);
        println!("usage {}", o.reply.value["result"]["usage"]);
        println!("{}", c.ok("system.contextUsage", json!({})).await);
    }
    println!("{}", c.ok("tools.list", json!({})).await);
    println!(
        "{}",
        c.call(
            "tools.execute",
            json!({"tool":"shell.exec","args":{"command":5}})
        )
        .await
    );
    println!(
        "{}",
        c.call("tools.execute", json!({"tool":"shell.exec","args":{}}))
            .await
    );
    println!(
        "{}",
        c.call("tools.execute", json!({"tool":"nope","args":{}}))
            .await
    );
    let id = c.send("ws:f", "/queue").await;
    let o = c.outcome(id).await;
    println!("{:?} {}", o.event_values(), o.reply.value);
}
