//! `/sync` is compressed (gzip or zstd) when the client asks, and only then.

use std::io::Read;

use crate::guard::seed_people;
use crate::helpers::{TestApp, OMFLOW_PASSWORD, OMFLOW_USER};
use crate::on_all_backends;

async fn sync_with(app: &TestApp, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/sync", app.base_url))
        .basic_auth(OMFLOW_USER, Some(OMFLOW_PASSWORD));
    if let Some(encoding) = accept_encoding {
        request = request.header("accept-encoding", encoding);
    }
    request.send().await.expect("request sent")
}

fn encoding(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned())
}

on_all_backends!(
    sync_is_compressed_only_when_the_client_asks,
    |db: TestDb| async move {
        let app = db.spawn().await;
        seed_people(&app, 200).await;

        let plain = sync_with(&app, None).await;
        assert_eq!(plain.status(), 200);
        assert_eq!(encoding(&plain), None);
        let plain = plain.bytes().await.unwrap();
        let value: serde_json::Value = serde_json::from_slice(&plain).expect("plain JSON");
        assert_eq!(value["user_info_list"].as_array().unwrap().len(), 200);

        let identity = sync_with(&app, Some("identity")).await;
        assert_eq!(encoding(&identity), None);
        assert_eq!(identity.bytes().await.unwrap(), plain);

        let gzip = sync_with(&app, Some("gzip")).await;
        assert_eq!(gzip.status(), 200);
        assert_eq!(encoding(&gzip).as_deref(), Some("gzip"));
        assert_eq!(
            gzip.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        let compressed = gzip.bytes().await.unwrap();
        assert!(
            compressed.len() * 5 < plain.len(),
            "{} of {}",
            compressed.len(),
            plain.len()
        );
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&compressed[..])
            .read_to_end(&mut unpacked)
            .expect("valid gzip");
        assert_eq!(unpacked, plain);

        let zstd = sync_with(&app, Some("zstd;q=1.0, gzip;q=0.5")).await;
        assert_eq!(encoding(&zstd).as_deref(), Some("zstd"));
        let compressed = zstd.bytes().await.unwrap();
        let unpacked = zstd::stream::decode_all(&compressed[..]).expect("valid zstd");
        assert_eq!(unpacked, plain);

        // A refusal is compressed too when asked, and still the fail envelope.
        let refused = app
            .client
            .post(format!("{}/sync", app.base_url))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
        assert_eq!(encoding(&refused).as_deref(), Some("gzip"));
        let body = refused.bytes().await.unwrap();
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut unpacked)
            .expect("valid gzip");
        let envelope: serde_json::Value = serde_json::from_slice(&unpacked).unwrap();
        assert_eq!(envelope["status"], "fail");
    }
);
