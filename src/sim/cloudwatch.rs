//! CloudWatch metrics drpilot puts (`drpilot readiness --cloudwatch`): the world keeps
//! them, in order, for tests to read ([`SimWorld::metric_data`]). They answer from the
//! region they are sent to, so a region that is down refuses them like any call.

use async_trait::async_trait;
use serde_json::json;

use super::state::SimMetricData;
use super::world::{Route, SimWorld};
use crate::cloud::{CloudResult, MetricDatum, Metrics};

#[async_trait]
impl Metrics for SimWorld {
    async fn put_metric_data(
        &self,
        region: &str,
        namespace: &str,
        data: &[MetricDatum],
    ) -> CloudResult<()> {
        let args = json!({ "namespace": namespace, "datums": data.len() });
        self.call(
            "cloudwatch",
            "PutMetricData",
            Route::Region(region),
            false,
            args,
            |s, _now| {
                s.metrics.push(SimMetricData {
                    region: region.to_string(),
                    namespace: namespace.to_string(),
                    data: data.to_vec(),
                });
                Ok(())
            },
        )
        .await
    }
}
