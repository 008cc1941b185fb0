//! Amazon SNS in the simulated world: every Publish is recorded (`SimWorld::published`,
//! and in the saved world), so a test reads what a run's notifications said.
//!
//! The notifier publishes from its own thread, off the run's runtime, so a publish
//! records without advancing the world's clock (it changes nothing the world models).
//! A topic ARN must be well formed and name the region the call is sent to, and a
//! subject at most 100 printable ASCII characters on one line, as SNS requires; any
//! such topic exists.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::world::SimWorld;
use crate::cloud::{CloudError, CloudErrorKind as K, CloudResult, Sns};

/// One message published to a topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPublished {
    /// The region the call was sent to.
    pub region: String,
    /// The topic.
    pub topic_arn: String,
    /// Its subject.
    pub subject: String,
    /// Its body.
    pub message: String,
    /// The id the world gave it.
    pub message_id: String,
}

#[async_trait]
impl Sns for SimWorld {
    async fn publish(
        &self,
        region: &str,
        topic_arn: &str,
        subject: &str,
        message: &str,
    ) -> CloudResult<String> {
        const OP: &str = "Publish";
        let parts: Vec<&str> = topic_arn.splitn(6, ':').collect();
        let well_formed = parts.len() == 6
            && parts[0] == "arn"
            && parts[2] == "sns"
            && !parts[4].is_empty()
            && !parts[5].is_empty();
        if !well_formed {
            return Err(CloudError::new(
                K::InvalidRequest,
                OP,
                Some(region),
                format!("InvalidParameter: {topic_arn} is not a topic ARN"),
            ));
        }
        if parts[3] != region {
            return Err(CloudError::new(
                K::InvalidRequest,
                OP,
                Some(region),
                format!(
                    "InvalidParameter: the topic is in {}, not {region}",
                    parts[3]
                ),
            ));
        }
        if subject != crate::cloud::sns_subject(subject) {
            return Err(CloudError::new(
                K::InvalidRequest,
                OP,
                Some(region),
                "InvalidParameter: Subject must be ASCII text, one line, at most 100 characters",
            ));
        }
        Ok(self.record_publish(|n| SimPublished {
            region: region.to_string(),
            topic_arn: topic_arn.to_string(),
            subject: subject.to_string(),
            message: message.to_string(),
            message_id: format!("sim-{n:08}"),
        }))
    }
}
