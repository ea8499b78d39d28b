//! The channels' job: answering a customer's message and sending the reply.

use chrono::Utc;
use cortex_core::ids::{ChannelConnectionId, InboundMessageId};
use cortex_core::jobs::NewJob;
use serde::{Deserialize, Serialize};

use crate::jobs::{Job, JobContext, JobError, new_job};

/// Answers a stored inbound message through the answer engine (the customer's earlier
/// messages still waiting first) and sends the reply from the asset it came to.
#[derive(Serialize, Deserialize)]
pub struct AnswerInbound {
    pub message_id: InboundMessageId,
}

impl Job for AnswerInbound {
    const NAME: &'static str = "AnswerInbound";

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        super::inbound::answer(&ctx.state, ctx.tenant()?, self.message_id).await
    }
}

/// The answer job of a message, unique per provider message on its connection (a delivery
/// replayed by the provider enqueues nothing).
pub fn answer_job(
    message: InboundMessageId,
    connection: ChannelConnectionId,
    provider_message_id: &str,
) -> NewJob {
    new_job(
        &AnswerInbound {
            message_id: message,
        },
        Utc::now(),
    )
    .unique(format!(
        "{}:{connection}:{provider_message_id}",
        AnswerInbound::NAME
    ))
}
