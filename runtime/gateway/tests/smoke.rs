mod support;

use serde_json::json;
use support::TestGateway;

#[tokio::test]
async fn smoke() {
    let gw = TestGateway::start("").await;
    let mut ws = gw.client().await;
    let info = ws.call("system.info", json!({})).await;
    println!("{info}");
    let r = ws
        .call("sessions.create", json!({"sessionId": "telegram:1"}))
        .await;
    println!("{r}");
    let id = ws
        .request(
            "agent.send",
            json!({"message": "hello there [[tool:shell.exec {\"command\":\"echo hi\"}]]"}),
        )
        .await;
    let (events, reply) = ws.reply_to(id).await;
    for e in &events {
        println!("{e}");
    }
    println!("{reply}");
    println!(
        "{}",
        ws.call("sessions.list", json!({"includePersisted": true}))
            .await
    );
    println!(
        "{}",
        ws.call("sessions.get", json!({"sessionId": "telegram:1"}))
            .await
    );
    println!("{}", ws.call("system.capabilities", json!({})).await);
    println!(
        "{}",
        ws.call("pairing.generate", json!({"channel": "telegram"}))
            .await
    );
    println!("{}", ws.call("config.get", json!({})).await);
    println!("{}", ws.call("nope", json!({})).await);
    println!("{}", ws.call("sessions.get", json!({"sessionId": 5})).await);
    gw.stop().await;
}
