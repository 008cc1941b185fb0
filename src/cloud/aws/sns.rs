//! Amazon SNS: one Publish per notification of a run to an `sns:` receiver.

use async_trait::async_trait;
use aws_smithy_types::retry::RetryConfig;

use super::AwsCloud;
use super::errors::map_sdk_error;
use crate::cloud::{CloudError, CloudErrorKind, CloudResult, Sns, sns_subject};

#[async_trait]
impl Sns for AwsCloud {
    async fn publish(
        &self,
        region: &str,
        topic_arn: &str,
        subject_text: &str,
        message: &str,
    ) -> CloudResult<String> {
        const OP: &str = "Publish";
        let mut req = self
            .sns(region)
            .publish()
            .topic_arn(topic_arn)
            .message(message);
        let subject = sns_subject(subject_text);
        if !subject.is_empty() {
            req = req.subject(subject);
        }
        let out = req
            .customize()
            .config_override(
                aws_sdk_sns::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| map_sdk_error(OP, Some(region), e))?;
        out.message_id().map(str::to_string).ok_or_else(|| {
            CloudError::new(
                CloudErrorKind::Transient,
                OP,
                Some(region),
                "the answer has no MessageId",
            )
        })
    }
}
