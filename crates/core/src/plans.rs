//! The plan catalogue. The operator may edit it later; these are the defaults from the
//! product brief, and `starter` is where every new tenant begins (in `trial` status).

use serde::Serialize;

/// Limits and prices of one plan. `None` means unlimited.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub id: &'static str,
    pub name: &'static str,
    pub setup_price_cents: u32,
    pub monthly_price_cents: u32,
    pub max_documents: Option<u32>,
    pub conversations_per_month: Option<u32>,
    pub conversations_soft_cap: u32,
    pub max_file_bytes: u64,
    pub max_chunks_per_document: u32,
    pub requests_per_minute: u32,
    /// `Some(0)` means the channel is not part of the plan.
    pub whatsapp_messages_per_month: Option<u32>,
    pub meta_channels: bool,
    pub handoff_inbox: bool,
}

/// The plan a new tenant starts on.
pub const DEFAULT_PLAN: &str = "starter";

const MB: u64 = 1_000_000;

/// The default catalogue: Starter, Growth, Scale.
pub fn default_catalogue() -> Vec<Plan> {
    vec![
        Plan {
            id: "starter",
            name: "Starter",
            setup_price_cents: 29_900,
            monthly_price_cents: 9_900,
            max_documents: Some(10),
            conversations_per_month: Some(1_000),
            conversations_soft_cap: 1_250,
            max_file_bytes: 5 * MB,
            max_chunks_per_document: 250,
            requests_per_minute: 15,
            whatsapp_messages_per_month: Some(0),
            meta_channels: false,
            handoff_inbox: false,
        },
        Plan {
            id: "growth",
            name: "Growth",
            setup_price_cents: 49_900,
            monthly_price_cents: 21_900,
            max_documents: Some(50),
            conversations_per_month: Some(5_000),
            conversations_soft_cap: 6_000,
            max_file_bytes: 10 * MB,
            max_chunks_per_document: 500,
            requests_per_minute: 50,
            whatsapp_messages_per_month: Some(2_000),
            meta_channels: true,
            handoff_inbox: true,
        },
        Plan {
            id: "scale",
            name: "Scale",
            setup_price_cents: 79_900,
            monthly_price_cents: 39_900,
            max_documents: None,
            conversations_per_month: None,
            conversations_soft_cap: 50_000,
            max_file_bytes: 20 * MB,
            max_chunks_per_document: 3_000,
            requests_per_minute: 100,
            whatsapp_messages_per_month: None,
            meta_channels: true,
            handoff_inbox: true,
        },
    ]
}

/// Looks a plan up in the default catalogue.
pub fn plan(id: &str) -> Option<Plan> {
    default_catalogue().into_iter().find(|p| p.id == id)
}

/// The plan `id`, or the default plan when the catalogue no longer has it.
pub fn plan_or_default(id: &str) -> Plan {
    plan(id)
        .or_else(|| plan(DEFAULT_PLAN))
        .expect("the default plan is in the catalogue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_plan_is_in_the_catalogue() {
        assert_eq!(plan(DEFAULT_PLAN).expect("present").name, "Starter");
    }

    #[test]
    fn plans_grow_monotonically() {
        let c = default_catalogue();
        for pair in c.windows(2) {
            assert!(pair[1].max_file_bytes > pair[0].max_file_bytes);
            assert!(pair[1].max_chunks_per_document > pair[0].max_chunks_per_document);
            assert!(pair[1].requests_per_minute > pair[0].requests_per_minute);
        }
    }
}
