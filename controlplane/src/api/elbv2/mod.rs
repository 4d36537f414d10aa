//! Elastic Load Balancing v2 (`elasticloadbalancing`, 2015-12-01, the AWS query protocol
//! with XML answers) on the same endpoint and credentials as the ECS API: `aws elbv2 ...`
//! and boto3's `elbv2` client configure Berth's embedded load balancers unchanged.

mod input;
mod listeners;
mod load_balancers;
mod render;

use berth_aws::{AwsError, AwsService, Call, Input, QueryProtocol, ServiceInfo};
use serde_json::Value;

use crate::lb::{DataPlane, LbContext, LbError, LoadBalancers, LoadBalancing};

pub struct Elbv2 {
    lbs: LoadBalancers,
    /// The account of every ARN.
    account: String,
}

impl Elbv2 {
    pub fn new(lbs: LoadBalancers, account: String) -> Self {
        Self { lbs, account }
    }
}

const INFO: ServiceInfo = ServiceInfo {
    signing_name: "elasticloadbalancing",
    json: None,
    query: Some(QueryProtocol {
        version: "2015-12-01",
        xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
    }),
};

impl From<LbError> for AwsError {
    fn from(e: LbError) -> Self {
        if e.code == "InternalFailure" {
            AwsError::internal(e.message)
        } else {
            AwsError::client(e.code, e.message)
        }
    }
}

/// What a call works with.
pub(crate) struct Ctx<'a> {
    pub lbs: &'a LoadBalancing,
    pub dataplane: &'a DataPlane,
    pub certificates: &'a crate::acm::Certificates,
    pub lb: LbContext,
    pub call: &'a Call<'a>,
}

impl AwsService for Elbv2 {
    fn info(&self) -> &ServiceInfo {
        &INFO
    }

    fn call(&self, call: &Call<'_>) -> Result<Value, AwsError> {
        let Input::Query(q) = call.input else {
            return Err(AwsError::serialization(
                "Elastic Load Balancing is served over the AWS query protocol only.",
            ));
        };
        let input = q.to_value()?;
        let ctx = Ctx {
            lbs: &self.lbs.config,
            dataplane: &self.lbs.dataplane,
            certificates: &self.lbs.certificates,
            lb: LbContext {
                region: call.region.to_string(),
                account: self.account.clone(),
                dns_name: self.lbs.dns_name.clone(),
            },
            call,
        };
        Ok(dispatch(&ctx, call.operation, &input)?)
    }
}

fn dispatch(ctx: &Ctx<'_>, op: &str, input: &Value) -> Result<Value, LbError> {
    match op {
        "CreateLoadBalancer" => load_balancers::create(ctx, input),
        "DescribeLoadBalancers" => load_balancers::describe(ctx, input),
        "DeleteLoadBalancer" => load_balancers::delete(ctx, input),
        "DescribeLoadBalancerAttributes" => load_balancers::attributes(ctx, input),
        "CreateTargetGroup" => load_balancers::create_target_group(ctx, input),
        "DescribeTargetGroups" => load_balancers::describe_target_groups(ctx, input),
        "ModifyTargetGroup" => load_balancers::modify_target_group(ctx, input),
        "DeleteTargetGroup" => load_balancers::delete_target_group(ctx, input),
        "DescribeTargetGroupAttributes" => load_balancers::target_group_attributes(ctx, input),
        "ModifyTargetGroupAttributes" => load_balancers::modify_target_group_attributes(ctx, input),
        "RegisterTargets" => load_balancers::register_targets(ctx, input),
        "DeregisterTargets" => load_balancers::deregister_targets(ctx, input),
        "DescribeTargetHealth" => load_balancers::describe_target_health(ctx, input),
        "CreateListener" => listeners::create(ctx, input),
        "DescribeListeners" => listeners::describe(ctx, input),
        "ModifyListener" => listeners::modify(ctx, input),
        "DeleteListener" => listeners::delete(ctx, input),
        "CreateRule" => listeners::create_rule(ctx, input),
        "DescribeRules" => listeners::describe_rules(ctx, input),
        "ModifyRule" => listeners::modify_rule(ctx, input),
        "DeleteRule" => listeners::delete_rule(ctx, input),
        "SetRulePriorities" => listeners::set_rule_priorities(ctx, input),
        "AddTags" => load_balancers::add_tags(ctx, input),
        "RemoveTags" => load_balancers::remove_tags(ctx, input),
        "DescribeTags" => load_balancers::describe_tags(ctx, input),
        _ => Err(LbError::new(
            "InvalidAction",
            format!("Operation '{op}' is not served by Berth's Elastic Load Balancing API."),
        )),
    }
}

#[cfg(test)]
mod tests;
