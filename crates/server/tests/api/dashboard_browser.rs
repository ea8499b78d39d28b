//! The web UI's pages in headless Chromium: each passes axe-core's serious and critical rules
//! in both themes, and is screenshotted in each (`target/tmp/screenshots/`).

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::helpers::webdriver::Browser;

#[tokio::test]
async fn the_development_mailbox_reads_well_in_both_themes_and_remembers_the_choice() {
    let app = spawn_app_with(|s| s.smtp.url = None).await;
    assert_eq!(app.signup("ana@acme.test", "Acme").await.status(), 202);

    let browser = Browser::start().await;
    browser.goto(&app.url("/dev/mail")).await;
    let heading = browser.wait_for("h1", Duration::from_secs(20)).await;
    assert_eq!(browser.text(&heading).await, "Development mailbox");
    let mail = browser.wait_for(".mail pre", Duration::from_secs(5)).await;
    assert!(
        crate::helpers::code_in(&browser.text(&mail).await).is_some(),
        "the code is readable on the page"
    );
    let theme = || async {
        browser
            .execute(
                "return getComputedStyle(document.documentElement).colorScheme;",
                json!([]),
            )
            .await
    };
    assert_eq!(theme().await, "light", "the system's preference at first");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "light: {violations:#?}");
    browser.screenshot("dev-mail-light").await;

    let toggle = browser
        .wait_for("#theme-toggle", Duration::from_secs(5))
        .await;
    assert_eq!(
        browser.attribute(&toggle, "aria-label").await.as_deref(),
        Some("Switch to the dark theme")
    );
    browser.click(&toggle).await;
    assert_eq!(theme().await, "dark");
    let violations = browser.accessibility_violations().await;
    assert!(violations.is_empty(), "dark: {violations:#?}");
    browser.screenshot("dev-mail-dark").await;

    // The choice is remembered in this browser.
    browser.refresh().await;
    browser.wait_for("h1", Duration::from_secs(20)).await;
    assert_eq!(theme().await, "dark");
    browser.quit().await;
}
