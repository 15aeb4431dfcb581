//! Every accepted stored-hash format logs in, and old or weak hashes are upgraded
//! to Argon2id once, with a compare-and-set.

use std::time::Duration;

use crate::authenticate::add_employee;
use crate::helpers::{json_body, TestApp};
use crate::on_all_backends;
use argon2::password_hash::{PasswordHasher, SaltString};

// Produced by other implementations (Python's argon2-cffi, bcrypt, passlib and
// hashlib in Django's layout), pasted as constants.
const CFFI_ARGON2ID: (&str, &str) = (
    "$argon2id$v=19$m=19456,t=2,p=1$UROqH9eegsl1pWdvt+ijEA$5+96yN9snLq2zJ4qAkRSlmuUEb8Hv8mSus3o15OpnKk",
    "cffi-password",
);
const CFFI_WEAK_ARGON2ID: (&str, &str) = (
    "$argon2id$v=19$m=8192,t=1,p=1$QGayYUx5smc2K7NutYbPSQ$wzsYfYx28O43XmDN+/2SvMSybQdFDrRo+HaST3wHBbk",
    "weak-password",
);
const PY_BCRYPT_2B: (&str, &str) = (
    "$2b$04$ol1arZDoiYXKY.ONksA7IO..LfjoFIKz8eLQBDwxB928D7Ma7Dux2",
    "bcrypt-password",
);
const PASSLIB_PBKDF2: (&str, &str) = (
    "$pbkdf2-sha256$1000$ZaxVqhUi5JxTSskZ4zznHA$WK/MX22Wmph4b1KOqfdfVWT17c8.IDgvJPBXPE8F8UE",
    "passlib-password",
);
// Odoo's format, from passlib 1.7.4's `pbkdf2_sha512.using(rounds=…).hash(…)`:
// older Odoo wrote 25,000 rounds, recent Odoo 600,000.
pub const ODOO_25K: (&str, &str) = (
    "$pbkdf2-sha512$25000$KWVMKUUohXDOGSOEUCpl7A$PQP8X5C7KvoymxmmwE6xySEFBXM7Ar6d786fQ4KtVi694.tHmybSUlnCp5./85Fwhlrp6aUJFEUfH87n9D4crw",
    "odoo-password",
);
pub const ODOO_600K: (&str, &str) = (
    "$pbkdf2-sha512$600000$G0No7b13rpXSeu9d651zbg$Js5UG98jrq2CQrjGkYo3YNvIShnGl2OisnpXi774LDKk6nnZ9y716mgpa6WyhSy6l0laEn2YNrHDQBNPrsKRMA",
    "odoo-recent",
);
const DJANGO_PBKDF2: (&str, &str) = (
    "pbkdf2_sha256$1000$S4ltS4ltS4lt$iohFPzzDJse1iZi+1ZFU2VScFmCj40SnAdUB6OdkYt4=",
    "django-password",
);

fn rustcrypto_pbkdf2_phc(password: &str) -> String {
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
    pbkdf2::Pbkdf2
        .hash_password_customized(
            password.as_bytes(),
            None,
            None,
            pbkdf2::Params {
                rounds: 1000,
                output_length: 32,
            },
            &salt,
        )
        .unwrap()
        .to_string()
}

async fn login_status(app: &TestApp, username: &str, password: &str) -> String {
    let body = json_body(app.post_authenticate(username, password).await).await;
    body["status"].as_str().unwrap().to_owned()
}

async fn stored_hash(app: &TestApp, username: &str) -> String {
    let rows = app
        .rows(&format!(
            "SELECT password_hash FROM employees WHERE username = '{username}'"
        ))
        .await;
    rows[0][0].clone().unwrap_or_default()
}

/// Waits for the background rehash to land.
async fn wait_for_hash_change(app: &TestApp, username: &str, old: &str) -> String {
    for _ in 0..100 {
        let now = stored_hash(app, username).await;
        if now != old {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the hash of {username} was not upgraded");
}

on_all_backends!(each_hash_format_logs_in, |db: TestDb| async move {
    let mut settings = db.settings();
    settings.auth.max_failures = 0;
    // Odoo's 600,000 PBKDF2 rounds queue behind a dozen other hashes on a debug
    // build; on a machine whose cores other jobs keep busy that outlasted the
    // default 30 s request deadline (a 503, not a verdict). Which formats log in
    // does not depend on the deadline.
    settings.server.request_timeout_secs = 300;
    let app = db.spawn_with(settings).await;
    let bcrypt_2a = PY_BCRYPT_2B.0.replacen("$2b$", "$2a$", 1);
    let bcrypt_2y = PY_BCRYPT_2B.0.replacen("$2b$", "$2y$", 1);
    let phc = rustcrypto_pbkdf2_phc("phc-password");
    let cases = [
        ("cffi", CFFI_ARGON2ID.0, CFFI_ARGON2ID.1),
        ("bcrypt2b", PY_BCRYPT_2B.0, PY_BCRYPT_2B.1),
        ("bcrypt2a", bcrypt_2a.as_str(), PY_BCRYPT_2B.1),
        ("bcrypt2y", bcrypt_2y.as_str(), PY_BCRYPT_2B.1),
        ("passlib", PASSLIB_PBKDF2.0, PASSLIB_PBKDF2.1),
        ("django", DJANGO_PBKDF2.0, DJANGO_PBKDF2.1),
        ("phc", phc.as_str(), "phc-password"),
        ("odoo", ODOO_25K.0, ODOO_25K.1),
        ("odoo600k", ODOO_600K.0, ODOO_600K.1),
    ];
    for (user, hash, _) in &cases {
        add_employee(&app, user, Some(hash), true).await;
    }
    for (user, _, password) in &cases {
        assert_eq!(
            login_status(&app, user, &format!("{password}x")).await,
            "fail",
            "{user}"
        );
    }
    for (user, _, password) in &cases {
        assert_eq!(
            login_status(&app, user, password).await,
            "success",
            "{user}"
        );
    }
});

on_all_backends!(
    legacy_and_weak_hashes_are_upgraded_once,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "legacy", Some(DJANGO_PBKDF2.0), true).await;
        add_employee(&app, "odoo", Some(ODOO_25K.0), true).await;
        add_employee(&app, "weak", Some(CFFI_WEAK_ARGON2ID.0), true).await;
        add_employee(&app, "strong", Some(CFFI_ARGON2ID.0), true).await;
        for (user, old, password) in [
            ("legacy", DJANGO_PBKDF2.0, DJANGO_PBKDF2.1),
            ("odoo", ODOO_25K.0, ODOO_25K.1),
            ("weak", CFFI_WEAK_ARGON2ID.0, CFFI_WEAK_ARGON2ID.1),
        ] {
            assert_eq!(login_status(&app, user, password).await, "success");
            let upgraded = wait_for_hash_change(&app, user, old).await;
            assert!(
                upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
                "{upgraded}"
            );
            // The new hash verifies, and a second login leaves it alone.
            assert_eq!(login_status(&app, user, password).await, "success");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(stored_hash(&app, user).await, upgraded);
        }
        // A hash at the configured strength is never rewritten.
        assert_eq!(
            login_status(&app, "strong", CFFI_ARGON2ID.1).await,
            "success"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored_hash(&app, "strong").await, CFFI_ARGON2ID.0);
    }
);

on_all_backends!(
    rehash_never_overwrites_a_hash_changed_meanwhile,
    |db: TestDb| async move {
        let app = db.spawn().await;
        add_employee(&app, "legacy", Some(DJANGO_PBKDF2.0), true).await;
        let db = app.db.clone();
        // HR sets a new hash between the check and the upgrade: the compare-and-set
        // must see the old value is gone.
        assert!(!db
            .replace_password_hash("legacy", "not-the-stored-hash", "$argon2id$new")
            .await
            .unwrap());
        assert_eq!(stored_hash(&app, "legacy").await, DJANGO_PBKDF2.0);
        assert!(db
            .replace_password_hash("legacy", DJANGO_PBKDF2.0, PY_BCRYPT_2B.0)
            .await
            .unwrap());
        assert_eq!(
            login_status(&app, "legacy", PY_BCRYPT_2B.1).await,
            "success"
        );
    }
);

on_all_backends!(
    bcrypt_truncation_never_hands_the_account_over,
    |db: TestDb| async move {
        let mut settings = db.settings();
        settings.auth.max_failures = 0;
        let app = db.spawn_with(settings).await;
        let prefix = "x".repeat(72);
        let real = format!("{prefix}REALTAIL");
        let stored = bcrypt::hash_with_salt(&real, 4, [9u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        add_employee(&app, "long", Some(&stored), true).await;
        // bcrypt saw only the first 72 bytes, so these match it too; none of them
        // may become the stored password.
        for other in [format!("{prefix}ATTACKER"), prefix.clone(), real.clone()] {
            login_status(&app, "long", &other).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                stored_hash(&app, "long").await,
                stored,
                "upgraded from {other}"
            );
            assert_eq!(login_status(&app, "long", &real).await, "success");
        }
        // A bcrypt password shorter than 72 bytes is still upgraded.
        let short = bcrypt::hash_with_salt("short-enough", 4, [9u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoB);
        add_employee(&app, "short", Some(&short), true).await;
        assert_eq!(login_status(&app, "short", "short-enough").await, "success");
        wait_for_hash_change(&app, "short", &short).await;
        assert_eq!(login_status(&app, "short", "short-enough").await, "success");
    }
);
