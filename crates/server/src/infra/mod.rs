//! Technical services the domain modules use through small interfaces: password hashing,
//! token minting and checking, outgoing email and rate limiting. Nothing here knows HTTP.

pub mod mailer;
pub mod passwords;
pub mod ratelimit;
pub mod tokens;
