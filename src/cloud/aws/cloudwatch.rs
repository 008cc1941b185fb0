//! CloudWatch: drpilot's own metrics (`drpilot readiness --cloudwatch`). The AWS
//! metrics the actions read (lag, capacity, backlog, health) are read by the traits of
//! their services, with `newest_datapoints` in `aws.rs`.

use async_trait::async_trait;

use super::{AwsCloud, Guarded};
use crate::cloud::reach::{CallKind, Service};
use crate::cloud::{CloudResult, MetricDatum, MetricUnit, Metrics};

/// PutMetricData takes at most 1,000 datums per request.
pub(super) const MAX_DATUMS: usize = 1000;

fn unit(u: MetricUnit) -> aws_sdk_cloudwatch::types::StandardUnit {
    use aws_sdk_cloudwatch::types::StandardUnit as S;
    match u {
        MetricUnit::Seconds => S::Seconds,
        MetricUnit::Bytes => S::Bytes,
        MetricUnit::Count => S::Count,
        MetricUnit::None => S::None,
    }
}

#[async_trait]
impl Metrics for AwsCloud {
    async fn put_metric_data(
        &self,
        region: &str,
        namespace: &str,
        data: &[MetricDatum],
    ) -> CloudResult<()> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum as Datum};
        const OP: &str = "PutMetricData";
        let cw = self.cloudwatch(region);
        for chunk in data.chunks(MAX_DATUMS) {
            let mut request = cw.put_metric_data().namespace(namespace);
            for d in chunk {
                let mut datum = Datum::builder()
                    .metric_name(&d.name)
                    .value(d.value)
                    .unit(unit(d.unit))
                    .timestamp(d.at.into());
                for (name, value) in &d.dimensions {
                    datum = datum.dimensions(Dimension::builder().name(name).value(value).build());
                }
                request = request.metric_data(datum.build());
            }
            // A read for the breaker: a repeated datum is harmless, so this is not a
            // mutation whose outcome must be known before it is sent again, and it
            // need not wait for a verdict on a region nobody probed.
            request
                .send()
                .guarded(
                    self.reach(),
                    CallKind::Read,
                    Service::Cloudwatch,
                    OP,
                    region,
                )
                .await?;
        }
        Ok(())
    }
}
