//! API tests: every flow a user has, through real HTTP against the real router. One test
//! binary, so the code compiles and links once.

mod helpers;

mod admin;
mod api_keys;
mod assets;
mod auth;
mod channels;
mod chat;
mod dashboard;
mod dashboard_bot;
mod dashboard_browser;
mod dashboard_channels;
mod dashboard_conversations;
mod dashboard_knowledge;
mod dashboard_operator;
mod dashboard_settings;
mod dashboard_team;
mod documents;
mod embedding;
mod eval;
mod http_basics;
mod jobs;
mod manychat;
mod meta_oauth;
mod migrations;
mod passwords;
mod permissions;
mod profile;
mod rerank;
mod serve;
mod team;
mod tokens;
mod twilio;
mod widget;
mod widget_browser;
