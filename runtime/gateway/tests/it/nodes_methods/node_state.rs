//! Location, status and push tokens of registered nodes (`node.location.set/get`,
//! `node.status.set`, `node.push_token.set`, their switches, the masked token preview), and
//! registrations that end with their connection or are taken over by another one.

use super::*;

#[tokio::test]
async fn location_and_push_switches_gate_their_methods() {
    let gw = TestGateway::start(
        "[server.nodes]\nenabled = true\n[server.nodes.location]\nenabled = false\n[server.nodes.push]\nenabled = false\n",
    )
    .await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("phone", "companion", 3, &[])).await;
    let caps = system_caps(&client).await;
    assert!(!caps.nodes.location_enabled, "{caps:?}");
    assert!(!caps.nodes.push_enabled, "{caps:?}");

    let reply = error_reply(client.node_location_set(at(1.0, 2.0)).await);
    assert_invalid(&reply, "method", "node.location.set with locations off");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.nodes.location.enabled"),
        "{reply}"
    );
    let reply = error_reply(
        client
            .node_push_token_set(push_token(types::PushProvider::Fcm))
            .await,
    );
    assert_invalid(&reply, "method", "node.push_token.set with push off");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("server.nodes.push.enabled"),
        "{reply}"
    );
    // node.status.set has no switch of its own.
    let updated = client
        .node_status_set(status("linux"))
        .await
        .expect("node.status.set");
    assert!(updated.updated);

    // Spec node.location.get: "Requires server.nodes.enabled and server.nodes.location.enabled;
    // a closed gate is InvalidRequest on `method`."
    let reply = error_reply(
        client
            .node_location_get(types::NodeLocationGetParams {})
            .await,
    );
    assert_invalid(&reply, "method", "node.location.get with locations off");
    gw.stop().await;
}

#[tokio::test]
async fn location_status_and_push_token_are_stored_and_tokens_only_shown_masked() {
    let gw = TestGateway::start(ALL_ON).await;
    let mut node = gw.client().await;
    let mut operator = gw.client().await;
    let mut frames: Vec<String> = Vec::new();
    let node_conn = connection_id(&mut node).await;
    let registered = call_ok(
        &mut node,
        "node.register",
        json!({"nodeId": "companion-phone", "role": "companion", "protocolVersion": 1,
               "capabilities": ["ui.canvas", "location"]}),
    )
    .await;
    frames.push(registered.to_string());

    // No location yet: `location` is absent.
    let empty = call_ok(&mut node, "node.location.get", json!({})).await;
    assert_eq!(
        empty,
        json!({"node": {"id": "companion-phone", "role": "companion"}})
    );

    // Out-of-range values name their param.
    for (params, path) in [
        (
            json!({"latitude": 91.0, "longitude": 0.0}),
            "params.latitude",
        ),
        (
            json!({"latitude": 0.0, "longitude": -180.5}),
            "params.longitude",
        ),
        (json!({"longitude": 0.0}), "params.latitude"),
    ] {
        let reply = node.call("node.location.set", params.clone()).await;
        assert_invalid(&reply, path, &format!("node.location.set {params}"));
    }

    let t0 = now_ms();
    let set = call_ok(
        &mut node,
        "node.location.set",
        json!({"latitude": 37.7749, "longitude": -122.4194, "accuracyMeters": 12.4,
               "source": "gps", "capturedAt": 1_763_241_200_000_u64}),
    )
    .await;
    let t1 = now_ms();
    assert_eq!(set["updated"], json!(true));
    assert_eq!(
        set["node"],
        json!({"id": "companion-phone", "role": "companion"})
    );
    let location = set["location"].clone();
    let received = location["receivedAt"].as_u64().expect("receivedAt ms");
    assert!(
        (t0..=t1).contains(&received),
        "receivedAt {received} is the receive time in epoch ms ({t0}..{t1})"
    );
    assert_eq!(
        location,
        json!({"latitude": 37.7749, "longitude": -122.4194, "accuracyMeters": 12.4,
               "source": "gps", "capturedAt": 1_763_241_200_000_u64, "receivedAt": received})
    );
    let got = call_ok(&mut node, "node.location.get", json!({})).await;
    assert_eq!(got["location"], location);

    // capturedAt defaults to the receive time.
    let second = call_ok(
        &mut node,
        "node.location.set",
        json!({"latitude": -33.8688, "longitude": 151.2093}),
    )
    .await;
    assert_eq!(
        second["location"]["capturedAt"],
        second["location"]["receivedAt"]
    );
    let location = second["location"].clone();
    assert!(location.get("accuracyMeters").is_none(), "{location}");

    // Status: the reply echoes it with receivedAt; a later report replaces the whole status.
    let reply = node
        .call(
            "node.status.set",
            json!({"platform": "ios", "batteryPct": 100.5}),
        )
        .await;
    assert_invalid(&reply, "params.batteryPct", "batteryPct above 100");
    let status = call_ok(
        &mut node,
        "node.status.set",
        json!({"platform": "macos", "appVersion": "0.3.1", "deviceName": "MacBook Pro",
               "statusText": "Idle", "batteryPct": 64, "powerSource": "battery"}),
    )
    .await;
    assert_eq!(status["updated"], json!(true));
    assert_eq!(status["status"]["deviceName"], json!("MacBook Pro"));
    assert_eq!(status["status"]["batteryPct"], json!(64.0));
    let status = call_ok(
        &mut node,
        "node.status.set",
        json!({"platform": "macos", "statusText": "Busy"}),
    )
    .await;
    let status = status["status"].clone();
    assert!(status["receivedAt"].as_u64().is_some(), "{status}");
    assert!(
        status.get("batteryPct").is_none() && status.get("deviceName").is_none(),
        "omitted optional fields are cleared: {status}"
    );

    // Push token: stored, answered and listed only as a preview.
    let reply = node
        .call(
            "node.push_token.set",
            json!({"provider": "fcm", "token": "short"}),
        )
        .await;
    assert_invalid(&reply, "params.token", "a token under 8 characters");
    let reply = node
        .call(
            "node.push_token.set",
            json!({"provider": "gcm", "token": TOKEN}),
        )
        .await;
    assert_invalid(&reply, "params.provider", "an unknown push provider");
    let push = call_ok(
        &mut node,
        "node.push_token.set",
        json!({"provider": "fcm", "token": TOKEN}),
    )
    .await;
    frames.push(push.to_string());
    assert_eq!(push["updated"], json!(true));
    assert_eq!(push["provider"], json!("fcm"));
    let preview = push["tokenPreview"]
        .as_str()
        .expect("tokenPreview")
        .to_owned();
    assert!(
        preview.starts_with("fcm_") && preview.ends_with("3456") && preview.len() < 16,
        "the preview shows the first and last 4 characters only: {preview}"
    );

    let nodes = call_ok(&mut operator, "system.nodes", json!({})).await;
    frames.push(nodes.to_string());
    let listed = entries(&nodes, "companion-phone");
    assert_eq!(listed.len(), 1, "{nodes}");
    let snapshot = listed[0];
    assert_eq!(snapshot["role"], json!("companion"));
    assert_eq!(snapshot["connectionId"], json!(node_conn));
    assert_eq!(snapshot["connected"], json!(true));
    assert_eq!(snapshot["protocolVersion"], json!(1));
    assert_eq!(
        snapshot["capabilities"],
        json!({"declared": ["ui.canvas", "location"], "enabled": ["ui.canvas", "location"]}),
        "in the order the node declared them"
    );
    assert!(
        snapshot["registeredAt"]
            .as_u64()
            .is_some_and(|t| t <= now_ms())
    );
    assert_eq!(snapshot["location"], location);
    assert_eq!(snapshot["status"], status);
    assert_eq!(snapshot["pushToken"]["provider"], json!("fcm"));
    assert_eq!(snapshot["pushToken"]["tokenPreview"], json!(preview));
    assert!(snapshot["pushToken"]["updatedAt"].as_u64().is_some());

    let located = call_ok(&mut operator, "system.location", json!({})).await;
    frames.push(located.to_string());
    assert_eq!(
        located,
        json!({"locations": [{"nodeId": "companion-phone", "role": "companion",
                              "connected": true, "location": location}]})
    );
    frames.push(
        call_ok(&mut node, "node.capabilities.get", json!({}))
            .await
            .to_string(),
    );
    frames.push(
        call_ok(&mut operator, "system.capabilities", json!({}))
            .await
            .to_string(),
    );

    for frame in &frames {
        assert!(
            !frame.contains(TOKEN) && !frame.contains("abcdefghijklmnop"),
            "the full push token must never be returned: {frame}"
        );
    }
    stop(gw, [node, operator]).await;
}

#[tokio::test]
async fn push_token_preview_is_first_four_and_last_four_around_three_dots() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("companion-phone", "companion", 3, &[])).await;
    let push = client
        .node_push_token_set(types::NodePushTokenSetParams {
            provider: types::PushProvider::Fcm,
            token: TOKEN.parse().expect("a valid push token"),
        })
        .await
        .expect("node.push_token.set");
    // Spec PushTokenPreview.tokenPreview: "its first 4 and last 4 characters around `...`";
    // the spec's example shows "fcm_...3456".
    assert_eq!(push.token_preview, "fcm_...3456", "{push:?}");
    gw.stop().await;
}

#[tokio::test]
async fn registration_belongs_to_its_connection_and_ends_when_it_closes() {
    let gw = TestGateway::start(ALL_ON).await;
    let node = gw.typed_client().await;
    let operator = gw.typed_client().await;
    let node_conn = my_connection_id(&node).await;
    register_typed(&node, reg("phone-1", "companion", 3, &[])).await;

    let nodes = system_nodes(&operator).await;
    let listed = snapshots(&nodes, "phone-1");
    assert_eq!(listed.len(), 1, "{nodes:?}");
    assert_eq!(listed[0].connection_id, node_conn);
    assert!(listed[0].connected);
    // The operator connection is not a node.
    let caps = node_caps(&operator).await;
    assert!(!caps.registered);

    // Dropping the typed client closes its connection.
    drop(node);
    let nodes = typed_poll_until(
        "phone-1 no longer connected after its connection closed",
        || system_nodes(&operator),
        |r| snapshots(r, "phone-1").iter().all(|n| !n.connected),
    )
    .await;

    // The id is free again: another connection registers it and is the live node.
    let again = gw.typed_client().await;
    let again_conn = my_connection_id(&again).await;
    register_typed(&again, reg("phone-1", "companion", 3, &[])).await;
    let live = system_nodes(&operator).await;
    let connected: Vec<&NodeSnapshot> = snapshots(&live, "phone-1")
        .into_iter()
        .filter(|n| n.connected)
        .collect();
    assert_eq!(connected.len(), 1, "{live:?}");
    assert_eq!(connected[0].connection_id, again_conn);

    // Spec system.nodes: "Lists every node registered since the gateway started (disconnected
    // ones included, with `connected: false`)".
    let gone = snapshots(&nodes, "phone-1");
    assert_eq!(
        gone.len(),
        1,
        "after the close, system.nodes still lists phone-1 with connected false: {nodes:?}"
    );
    assert!(!gone[0].connected, "{nodes:?}");
    assert_eq!(gone[0].connection_id, node_conn, "{nodes:?}");
    gw.stop().await;
}

#[tokio::test]
async fn a_node_id_registered_on_another_connection_is_taken_over() {
    let gw = TestGateway::start(ALL_ON).await;
    let first = gw.typed_client().await;
    let second = gw.typed_client().await;
    register_typed(&first, reg("desk", "companion", 3, &[])).await;
    let second_conn = second
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info")
        .connection_id
        .expect("connectionId");
    register_typed(&second, reg("desk", "companion", 3, &[])).await;

    // Spec node.register: "an id already held by another open connection is taken over (the
    // older connection stays open but is no longer a node)".
    let nodes = system_nodes(&second).await;
    let live: Vec<&NodeSnapshot> = snapshots(&nodes, "desk")
        .into_iter()
        .filter(|n| n.connected)
        .collect();
    assert_eq!(live.len(), 1, "one live registration of `desk`: {nodes:?}");
    assert_eq!(live[0].connection_id, *second_conn, "{nodes:?}");
    let old = node_caps(&first).await;
    assert!(
        !old.registered,
        "the older connection is no longer a node: {old:?}"
    );
    let info = first
        .system_info(types::SystemInfoParams {})
        .await
        .expect("system.info on the older connection");
    assert!(!info.version.is_empty(), "the older connection stays open");
    gw.stop().await;
}

#[tokio::test]
async fn last_known_location_and_status_survive_a_restart() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("laptop", "companion", 3, &[])).await;
    let location = set_location(
        &client,
        types::NodeLocationSetParams {
            accuracy_meters: Some(30.0),
            source: Some("wifi".into()),
            ..at(48.8566, 2.3522)
        },
    )
    .await
    .location;
    let stored_status = client
        .node_status_set(types::NodeStatusSetParams {
            status_text: Some("Compiling".into()),
            power_source: Some("ac".into()),
            ..status("linux")
        })
        .await
        .expect("node.status.set")
        .status;
    drop(client);

    let gw = restart(gw, ALL_ON).await;
    let client = gw.typed_client().await;
    // Before re-registering, the stored location is visible to operators.
    let located = system_location(&client).await;
    assert_eq!(
        located,
        types::SystemLocationResult {
            locations: vec![types::NodeLocationEntry {
                node_id: "laptop".into(),
                role: "companion".into(),
                connected: false,
                location: location.clone(),
            }]
        },
        "the stored location of a node that is not connected"
    );
    register_typed(&client, reg("laptop", "companion", 3, &[])).await;
    let got = client
        .node_location_get(types::NodeLocationGetParams {})
        .await
        .expect("node.location.get");
    assert_eq!(
        got.location.as_ref(),
        Some(&location),
        "the location stored before the restart"
    );
    let nodes = system_nodes(&client).await;
    let listed = snapshots(&nodes, "laptop");
    assert_eq!(listed.len(), 1, "{nodes:?}");
    assert_eq!(listed[0].status.as_ref(), Some(&stored_status), "{nodes:?}");
    assert_eq!(listed[0].location.as_ref(), Some(&location), "{nodes:?}");
    gw.stop().await;
}

#[tokio::test]
async fn system_location_keeps_disconnected_nodes_and_lists_the_latest_first() {
    let gw = TestGateway::start(ALL_ON).await;
    let a = gw.typed_client().await;
    let b = gw.typed_client().await;
    let operator = gw.typed_client().await;
    register_typed(&a, reg("a-node", "companion", 3, &[])).await;
    let first = set_location(&a, at(1.0, 1.0)).await;
    wait_past(first.location.received_at).await;
    register_typed(&b, reg("b-node", "companion", 3, &[])).await;
    set_location(&b, at(2.0, 2.0)).await;
    drop(a);

    let located = typed_poll_until(
        "a-node reported as disconnected",
        || system_location(&operator),
        |r| {
            r.locations
                .iter()
                .any(|e| e.node_id == "a-node" && !e.connected)
        },
    )
    .await;
    let by_id = |id: &str| -> &types::NodeLocationEntry {
        located
            .locations
            .iter()
            .find(|e| e.node_id == id)
            .unwrap_or_else(|| panic!("{id} listed: {located:?}"))
    };
    assert_eq!(by_id("a-node").location.latitude, 1.0);
    assert!(by_id("b-node").connected);

    // Spec system.location: "most recently received first".
    let order: Vec<&str> = located
        .locations
        .iter()
        .map(|e| e.node_id.as_str())
        .collect();
    assert_eq!(
        order,
        ["b-node", "a-node"],
        "most recently received first: {located:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn system_nodes_lists_the_newest_registration_first() {
    let gw = TestGateway::start(ALL_ON).await;
    let a = gw.typed_client().await;
    let z = gw.typed_client().await;
    register_typed(&a, reg("a-node", "companion", 3, &[])).await;
    let nodes = system_nodes(&a).await;
    let registered_at = snapshots(&nodes, "a-node")[0].registered_at;
    wait_past(registered_at).await;
    register_typed(&z, reg("z-node", "companion", 3, &[])).await;
    let nodes = system_nodes(&a).await;
    let order: Vec<&str> = nodes.nodes.iter().map(|n| n.node_id.as_str()).collect();
    assert_eq!(
        order,
        ["z-node", "a-node"],
        "spec system.nodes: newest registration first: {nodes:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn system_location_is_empty_when_location_support_is_disabled() {
    let gw = TestGateway::start(ALL_ON).await;
    let client = gw.typed_client().await;
    register_typed(&client, reg("phone", "companion", 3, &[])).await;
    set_location(&client, at(10.0, 20.0)).await;
    drop(client);
    let gw = restart(gw, "[server.nodes.location]\nenabled = false\n").await;
    let client = gw.typed_client().await;
    let located = system_location(&client).await;
    // Spec system.location: "Returns an empty list when node or location support is disabled."
    assert_eq!(
        located,
        types::SystemLocationResult { locations: vec![] },
        "{located:?}"
    );
    gw.stop().await;
}
