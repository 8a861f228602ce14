//! What a change of mode (or of front end) does beside CloudFormation's update of the root
//! stack, in one place for `setup`: before the update, what only the old mode can still do
//! or what CloudFormation would leave behind; after it, what is gone and what was kept.
//!
//! - scalable → single: the servers are taken out while the scalable role still lets them
//!   drain (the same update removes the permissions their drain needs), and are brought back
//!   if the update fails; the log groups RDS and ECS made for the clusters the switch deletes
//!   go after it (destroy could no longer find them);
//! - away from Greenlight (to single, or `FrontendType External`): its uploads bucket is
//!   emptied first (CloudFormation deletes only empty buckets, and one it cannot delete in an
//!   update's clean-up is left outside the deployment);
//! - single → scalable: the data volume CloudFormation snapshots and deletes is named, with
//!   its snapshot, afterwards;
//! - scalable → single: afterwards, what is kept of the deleted database and recordings (the
//!   cluster's final snapshot, EFS's backups) and that nothing is migrated.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_cloudformation::types::Stack;

use super::out;
use super::stacks::{nested_resource, server_group};
use crate::aws::Aws;
use crate::cfn::ops::{outputs, parameters};
use crate::settings::{P_FRONTEND, P_MODE, SetupSettings, drain_timeout};
use crate::signed;
use crate::ui::Printer;

#[derive(Debug, Default)]
pub(super) struct Switch {
    /// single → scalable: the data volume the update deletes (after its snapshot).
    data_volume: Option<String>,
    /// scalable → single: the server group and how many servers it had before they were
    /// taken out.
    released: Option<(String, i32)>,
    /// scalable → single: the warm pool's size before it was emptied for the switch.
    warm_pool: Option<i32>,
    /// scalable → single: whether the launch hook was taken off the group for the switch.
    launch_hook: bool,
    /// scalable → single: the log groups of the clusters the update deletes.
    service_logs: Vec<String>,
    /// scalable → single: the Aurora cluster and the EFS file system the update deletes, and
    /// when it started (to find the cluster's final snapshot).
    scalable_data: Option<ScalableData>,
}

#[derive(Debug)]
struct ScalableData {
    stack: String,
    cluster: Option<String>,
    file_system: Option<String>,
    since: aws_smithy_types::DateTime,
}

impl Switch {
    /// Before the update (after the user confirmed it).
    pub(super) async fn prepare(
        aws: &Aws,
        p: &Printer,
        existing: Option<&Stack>,
        s: &SetupSettings,
    ) -> Result<Self> {
        let Some(stack) = existing else {
            return Ok(Switch::default());
        };
        let mut switch = Switch::default();
        match switch.prepare_for(aws, p, stack, s).await {
            Ok(()) => Ok(switch),
            Err(e) => {
                // Servers already taken out come back: the update will not run.
                switch.failed(aws, p, &s.stack).await;
                Err(e)
            }
        }
    }

    async fn prepare_for(
        &mut self,
        aws: &Aws,
        p: &Printer,
        stack: &Stack,
        s: &SetupSettings,
    ) -> Result<()> {
        let from = parameters(stack).get(P_MODE).cloned().unwrap_or_default();
        let switch = self;
        if from == "single" && s.mode == "scalable" {
            switch.data_volume =
                nested_resource(aws, stack, "BbbServersStack", "DataVolume").await?;
        }
        if from == "scalable" && s.mode == "single" {
            // Recorded before anything changes, so that a failure from here on brings
            // the servers back.
            switch.released = server_count(aws, stack).await?;
            if let Some((group, _)) = &switch.released {
                take_servers_out(aws, p, stack, group).await?;
                // The update would start the single server from the warm pool (prepared
                // scalable servers, which no update replaces) before its clean-up deletes
                // the pool.
                switch.warm_pool = crate::drain::empty_warm_pool(aws, p, group).await?;
                // No registrar answers the launch hook in single mode.
                switch.launch_hook = crate::drain::delete_launch_hook(aws, group).await?;
            }
            switch.service_logs = super::destroy::service_log_groups_of(aws, stack).await?;
            switch.scalable_data = Some(ScalableData {
                stack: s.stack.clone(),
                cluster: nested_resource(aws, stack, "DatabaseStack", "DBCluster").await?,
                file_system: nested_resource(aws, stack, "StorageStack", "FileSystem").await?,
                since: aws_smithy_types::DateTime::from(std::time::SystemTime::now()),
            });
        }
        let keeps_greenlight =
            s.mode == "scalable" && s.params.get(P_FRONTEND).is_none_or(|t| t == "Greenlight");
        if !keeps_greenlight {
            empty_uploads(aws, p, stack).await?;
        }
        Ok(())
    }

    /// The update failed: the servers taken out for it come back, and may hold scale-in
    /// protection again. What fails here is said; the update's error stays the error.
    pub(super) async fn failed(&self, aws: &Aws, p: &Printer, stack: &str) {
        let Some((group, before)) = &self.released else {
            return;
        };
        if self.launch_hook
            && let Err(e) = crate::drain::ensure_launch_hook(aws, p, group).await
        {
            p.warn(format!(
                "The switch failed, and the launch hook could not be put back ({e:#}): `bbbctl setup -s {stack}` puts it back"
            ));
        }
        if let Some(size) = self.warm_pool.filter(|n| *n > 0)
            && let Err(e) = crate::drain::put_warm_pool(aws, group, size).await
        {
            p.warn(format!(
                "The switch failed, and the warm pool could not be set back to {size} ({e:#}): `bbbctl scale -s {stack} --warm {size}`"
            ));
        }
        if let Ok(Some(asg)) = server_group(aws, group).await
            && let Err(e) = super::destroy::allow_protection(aws, &asg).await
        {
            p.warn(format!("{e:#}"));
        }
        match crate::drain::set_capacity(aws, group, *before).await {
            Ok(()) => p.warn(format!(
                "The switch failed: the {before} BBB server(s) taken out for it start again (group {group})."
            )),
            Err(e) => p.warn(format!(
                "The switch failed, and the BBB servers taken out for it could not be started again ({e:#}): `bbbctl scale -s {stack} --count {before}`"
            )),
        }
    }

    /// After a successful update.
    pub(super) async fn done(&self, aws: &Aws, p: &Printer) -> Result<()> {
        for name in super::destroy::delete_log_groups(aws, p, self.service_logs.clone()).await {
            p.info(format!(
                "Deleted log group {name} (the switch deleted its cluster)"
            ));
        }
        if let Some(volume) = &self.data_volume {
            report_snapshot(aws, p, volume).await?;
        }
        if let Some(data) = &self.scalable_data {
            p.info(data.kept(aws).await?);
        }
        Ok(())
    }
}

impl ScalableData {
    /// What stays of the scalable deployment's data after a switch to single mode, and how
    /// to get it back: nothing of it is migrated to the single server.
    async fn kept(&self, aws: &Aws) -> Result<String> {
        let mut text = String::from(
            "The scalable deployment's data is not migrated to the single server (a new Greenlight, with an empty database and no recordings). What is kept:",
        );
        if let Some(cluster) = &self.cluster {
            let snapshots =
                super::destroy::final_cluster_snapshots(aws, cluster, &self.since).await?;
            match snapshots.as_slice() {
                [] => text.push_str(&format!(
                    "\n  - Greenlight's and Scalelite's databases: no final snapshot of Aurora cluster {cluster} was found (look with `aws rds describe-db-cluster-snapshots --db-cluster-identifier {cluster}`)"
                )),
                ids => text.push_str(&format!(
                    "\n  - Greenlight's and Scalelite's databases: final snapshot {} of Aurora cluster {cluster}, kept until you delete it (aws rds delete-db-cluster-snapshot --db-cluster-snapshot-identifier ID)",
                    ids.join(", ")
                )),
            }
        }
        if let Some(fs) = &self.file_system {
            text.push_str(&format!(
                "\n  - {}",
                super::destroy::recordings_backups(aws, fs, &self.stack)
            ));
        }
        text.push_str(
            "\n  A switch back to scalable mode starts with a new, empty database and file system; the README's \"Backup, restore and upgrades\" says how to restore them from these.",
        );
        Ok(text)
    }
}

/// The server group and how many servers it has now.
async fn server_count(aws: &Aws, stack: &Stack) -> Result<Option<(String, i32)>> {
    let Some(group) = outputs(stack).remove(out::SERVER_GROUP) else {
        return Ok(None);
    };
    let Some(asg) = server_group(aws, &group).await? else {
        return Ok(None);
    };
    Ok(Some((group, asg.desired_capacity().unwrap_or(0))))
}

/// Releases the servers (a server holding scale-in protection would block the way down) and
/// takes them out: each drains (cordoned in Scalelite, its meetings may go on up to
/// BBBServerDrainTimeout) and goes.
async fn take_servers_out(aws: &Aws, p: &Printer, stack: &Stack, group: &str) -> Result<()> {
    let lifted = super::destroy::lift_protection(aws, &[group.to_string()]).await?;
    if !lifted.is_empty() {
        p.info(format!(
            "Lifted scale-in protection from {} server(s) for the switch.",
            lifted.len()
        ));
    }
    let params = parameters(stack);
    let drain = drain_timeout(&params);
    p.info(format!(
        "Taking the BBB servers out before the switch: each drains (its meetings may go on and its recordings are made safe, at most {drain} s)…"
    ));
    let bucket = params
        .get(crate::templates::BUCKET_PARAM)
        .map(String::as_str);
    // The drain limit runs from each server's own drain start: a margin for the last to
    // begin and to leave.
    crate::drain::empty_group(aws, p, group, bucket, Duration::from_secs(drain + 600)).await
}

/// Empties Greenlight's uploads bucket, when the deployment has one.
async fn empty_uploads(aws: &Aws, p: &Printer, stack: &Stack) -> Result<()> {
    let Some(bucket) =
        nested_resource(aws, stack, "FrontendStack", "GreenlightStorageBucket").await?
    else {
        return Ok(());
    };
    let n = crate::upload::empty_bucket(&aws.s3, &bucket).await?;
    p.info(format!(
        "Greenlight goes: its uploads bucket {bucket} emptied ({n} object version(s) deleted; should the change fail, they stay deleted)."
    ));
    Ok(())
}

/// After such a switch: names the snapshot CloudFormation took of the data volume, and says
/// that its data was not migrated.
async fn report_snapshot(aws: &Aws, p: &Printer, volume: &str) -> Result<()> {
    let mut snapshots = signed::volume_snapshots(aws, volume).await?;
    snapshots.sort_by(|a, b| b.started.cmp(&a.started));
    let Some(snapshot) = snapshots.first() else {
        p.warn(format!(
            "no snapshot of the single server's data volume {volume} was found: CloudFormation should have taken one (DeletionPolicy Snapshot)"
        ));
        return Ok(());
    };
    let pending = if snapshot.state.is_empty() || snapshot.state == "completed" {
        String::new()
    } else {
        format!(" (still being written: {})", snapshot.state)
    };
    p.info(format!(
        "The single server's data volume {volume} (Greenlight's users and rooms, recordings, the certificate) was deleted after CloudFormation snapshotted it: snapshot {}{pending}. \
         Its data is not migrated to scalable mode; the snapshot stays until you delete it (aws ec2 delete-snapshot --snapshot-id {}). \
         To get the data back, create a volume from it and copy the data out (README: \"Switching a single deployment to scalable: what happens to its data\").",
        snapshot.id, snapshot.id
    ));
    Ok(())
}
