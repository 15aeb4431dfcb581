//! Every error status answers the OMFLOW fail envelope.

use crate::helpers::{fail_message, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

on_all_backends!(wrong_method_is_405_with_envelope, |db: TestDb| async move {
    let app = db.spawn().await;
    for path in ["/sync", "/authenticate"] {
        let response = app
            .client
            .get(format!("{}{path}", app.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(fail_message(response).await, "method not allowed");
    }
    let response = app
        .client
        .post(format!("{}/healthz", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
});

on_all_backends!(unknown_path_is_404_with_envelope, |db: TestDb| async move {
    let app = db.spawn().await;
    let response = app
        .client
        .get(format!("{}/nope", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(fail_message(response).await, "not found");
});

on_all_backends!(
    body_over_the_limit_is_413_with_envelope,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.server.body_limit_bytes = 1024;
        let app = db.spawn_with(settings).await;
        let big = format!(r#"{{"username":"a","password":"{}"}}"#, "x".repeat(4096));
        for path in ["/authenticate", "/sync"] {
            let response = app
                .client
                .post(format!("{}{path}", app.base_url))
                .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
                .body(big.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 413, "{path}");
            assert_eq!(
                fail_message(response).await,
                "request body is larger than 1024 bytes"
            );
        }
        // Chunked bodies (no Content-Length) are cut off at the limit too.
        let chunks =
            futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 512])));
        let response = app
            .client
            .post(format!("{}/authenticate", app.base_url))
            .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD))
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413);
        assert!(fail_message(response)
            .await
            .contains("larger than 1024 bytes"));
    }
);

on_all_backends!(
    a_body_announced_over_the_limit_is_413_at_once,
    |db: TestDb| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let app = db.spawn().await;
        // Announce a megabyte and send nothing: the answer must not wait for it.
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream
            .write_all(
                b"POST /authenticate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 1000000\r\n\r\n",
            )
            .await
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
                .await
                .expect("answered without waiting for the body")
                .unwrap();
        let text = String::from_utf8_lossy(&answer[..read]);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
        assert!(text.contains(r#""status":"fail""#), "{text}");
    }
);
