//! The shared activity record (`hr_bridge::ops::activity`): what the CLI and the
//! console write, read back newest first, on every backend.

use hr_bridge::ops::activity::{self, Actor, Channel};

use crate::on_all_backends;

on_all_backends!(
    actions_are_recorded_and_listed_newest_first,
    |db: TestDb| async move {
        let app = db.spawn().await;
        let cli = Actor {
            name: "alice".into(),
            channel: Channel::Cli,
        };
        let console = Actor {
            name: "hr.lead@example.com".into(),
            channel: Channel::Console,
        };
        activity::record(&app.db, &cli, "unlock", "bob", "failures: 5")
            .await
            .expect("recorded");
        // A hostile, overlong subject is stored cut, never refused.
        let long = format!("\u{1b}[2J{}", "é".repeat(2000));
        activity::record(&app.db, &console, "console_sign_in", &long, "")
            .await
            .expect("recorded");

        let all = activity::list(&app.db, 10, 0).await.expect("listed");
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].action, "console_sign_in");
        assert_eq!(all[0].channel, "console");
        assert_eq!(all[0].actor, "hr.lead@example.com");
        assert!(all[0].subject.starts_with("\u{1b}[2J"));
        assert_eq!(all[0].subject.chars().count(), 255);
        assert_eq!(
            (all[1].actor.as_str(), all[1].channel.as_str()),
            ("alice", "cli")
        );
        assert_eq!(
            (
                all[1].action.as_str(),
                all[1].subject.as_str(),
                all[1].detail.as_str()
            ),
            ("unlock", "bob", "failures: 5")
        );
        assert!(all[0].at >= all[1].at && all[1].at > 1_700_000_000_000);
        let page = activity::list(&app.db, 1, 1).await.expect("listed");
        assert_eq!(page, all[1..]);
        let json = serde_json::to_value(&all[1]).expect("serializes");
        assert_eq!(json["channel"], "cli");
        app.stop().await;
    }
);
