//! The operations of botocore's ECS model that Berth does not serve, each answered
//! with a `ClientException` that says why, instead of an unknown operation: a tool
//! learns what Berth lacks, not that it spoke the wrong protocol.

/// Why `op` is not served, if it is an ECS operation Berth lacks.
pub fn reason(op: &str) -> Option<&'static str> {
    Some(match op {
        "CreateDaemon" | "DeleteDaemon" | "DeleteDaemonTaskDefinition" | "DescribeDaemon"
        | "DescribeDaemonDeployments" | "DescribeDaemonRevisions"
        | "DescribeDaemonTaskDefinition" | "ListDaemonDeployments"
        | "ListDaemonTaskDefinitions" | "ListDaemons" | "RegisterDaemonTaskDefinition"
        | "UpdateDaemon" => "ECS daemons are not served by Berth yet.",
        "CreateExpressGatewayService" | "DeleteExpressGatewayService"
        | "DescribeExpressGatewayService" | "UpdateExpressGatewayService" => {
            "Express gateway services provision AWS load balancers, certificates and domains; Berth has none of those to provision."
        }
        "DiscoverPollEndpoint" | "RegisterContainerInstance" | "SubmitTaskStateChange"
        | "SubmitContainerStateChange" | "SubmitAttachmentStateChanges" => {
            "This is the ECS container agent's call: berth-agent registers and reports over its own mutually authenticated session instead (join it with a token from `berth join-token create`)."
        }
        "UpdateContainerAgent" => {
            "berth-agent is updated with its host's packages and restarted by systemd; it does not update itself."
        }
        "ListServicesByNamespace" => "Service Connect namespaces are not served by Berth yet.",
        "ContinueServiceDeployment" => {
            "Deployment lifecycle hooks (which a deployment waits on to continue) are not served by Berth yet."
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_of_the_model_is_served_or_says_why_not() {
        // botocore's ECS model (2014-11-13) as of this writing: 77 operations.
        let model = "ContinueServiceDeployment CreateCapacityProvider CreateCluster CreateDaemon CreateExpressGatewayService CreateService CreateTaskSet DeleteAccountSetting DeleteAttributes DeleteCapacityProvider DeleteCluster DeleteDaemon DeleteDaemonTaskDefinition DeleteExpressGatewayService DeleteService DeleteTaskDefinitions DeleteTaskSet DeregisterContainerInstance DeregisterTaskDefinition DescribeCapacityProviders DescribeClusters DescribeContainerInstances DescribeDaemon DescribeDaemonDeployments DescribeDaemonRevisions DescribeDaemonTaskDefinition DescribeExpressGatewayService DescribeServiceDeployments DescribeServiceRevisions DescribeServices DescribeTaskDefinition DescribeTaskSets DescribeTasks DiscoverPollEndpoint ExecuteCommand GetTaskProtection ListAccountSettings ListAttributes ListClusters ListContainerInstances ListDaemonDeployments ListDaemonTaskDefinitions ListDaemons ListServiceDeployments ListServices ListServicesByNamespace ListTagsForResource ListTaskDefinitionFamilies ListTaskDefinitions ListTasks PutAccountSetting PutAccountSettingDefault PutAttributes PutClusterCapacityProviders RegisterContainerInstance RegisterDaemonTaskDefinition RegisterTaskDefinition RunTask StartTask StopServiceDeployment StopTask SubmitAttachmentStateChanges SubmitContainerStateChange SubmitTaskStateChange TagResource UntagResource UpdateCapacityProvider UpdateCluster UpdateClusterSettings UpdateContainerAgent UpdateContainerInstancesState UpdateDaemon UpdateExpressGatewayService UpdateService UpdateServicePrimaryTaskSet UpdateTaskProtection UpdateTaskSet";
        let ops: Vec<&str> = model.split_whitespace().collect();
        assert_eq!(ops.len(), 77);
        let (cp, _) = crate::state::test_support::fleet();
        let mut served = 0;
        let mut unsupported = 0;
        for op in ops {
            // Served by `Ecs::call`, which holds the exec sessions `dispatch` has not.
            if op == "ExecuteCommand" {
                served += 1;
                continue;
            }
            match crate::api::ecs::dispatch(&cp, "us-east-1", op, b"{}") {
                Err(e) if e.kind == crate::api::error::ErrorType::UnknownOperation => {
                    panic!("{op}: neither served nor explained")
                }
                Err(e)
                    if e.kind == crate::api::error::ErrorType::Client
                        && super::reason(op).is_some() =>
                {
                    assert_eq!(e.message, super::reason(op).unwrap());
                    unsupported += 1;
                }
                _ => served += 1,
            }
        }
        assert_eq!((served, unsupported), (53, 24));
    }
}
