//! Creating the archive's tables through Bigtable's admin API (the generated googleapis
//! client): the emulator over plain text, the real service over TLS (system roots) with a
//! token from Google's credentials.

use std::collections::HashMap;

use googleapis_tonic_google_bigtable_admin_v2::google::bigtable::admin::v2::bigtable_table_admin_client::BigtableTableAdminClient;
use googleapis_tonic_google_bigtable_admin_v2::google::bigtable::admin::v2::{
    ColumnFamily, CreateTableRequest, GcRule, Table, gc_rule,
};
use tonic::transport::{Channel, ClientTlsConfig};

use super::keys::FAMILY;
use crate::error::HistoryError;

const ADMIN_ENDPOINT: &str = "https://bigtableadmin.googleapis.com";
const ADMIN_SCOPE: &str = "https://www.googleapis.com/auth/bigtable.admin.table";

/// Where the admin API is.
pub(crate) struct Admin {
    pub(crate) project: String,
    pub(crate) instance: String,
    pub(crate) emulator: Option<String>,
}

impl Admin {
    /// Creates each of `tables` that does not exist, with one column family keeping one version.
    pub(crate) async fn ensure_tables(&self, shown: &str, tables: &[String]) -> Result<(), HistoryError> {
        let unavailable = |reason: String| HistoryError::Unavailable {
            archive: shown.to_owned(),
            action: "connecting to the admin API".into(),
            reason,
        };
        let (channel, token) = match &self.emulator {
            Some(host) => {
                let channel = Channel::from_shared(format!("http://{host}"))
                    .map_err(|e| HistoryError::Config(format!("emulator address `{host}`: {e}")))?
                    .connect()
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                (channel, None)
            }
            None => {
                let tls = ClientTlsConfig::new().with_native_roots();
                let channel = Channel::from_static(ADMIN_ENDPOINT)
                    .tls_config(tls)
                    .map_err(|e| HistoryError::Config(format!("TLS: {e}")))?
                    .connect()
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                let denied = |reason: String| HistoryError::Denied {
                    archive: shown.to_owned(),
                    action: "getting a token for the admin API".into(),
                    hint: "GOOGLE_APPLICATION_CREDENTIALS or the metadata server",
                    reason,
                };
                let provider = gcp_auth::provider().await.map_err(|e| denied(e.to_string()))?;
                let token = provider.token(&[ADMIN_SCOPE]).await.map_err(|e| denied(e.to_string()))?;
                (channel, Some(format!("Bearer {}", token.as_str())))
            }
        };
        let mut client = BigtableTableAdminClient::new(channel);
        let parent = format!("projects/{}/instances/{}", self.project, self.instance);
        for table_id in tables {
            let family = ColumnFamily {
                gc_rule: Some(GcRule { rule: Some(gc_rule::Rule::MaxNumVersions(1)) }),
                ..ColumnFamily::default()
            };
            let table = Table { column_families: HashMap::from([(FAMILY.to_owned(), family)]), ..Table::default() };
            let mut request = tonic::Request::new(CreateTableRequest {
                parent: parent.clone(),
                table_id: table_id.clone(),
                table: Some(table),
                ..CreateTableRequest::default()
            });
            if let Some(t) = &token {
                let value =
                    t.parse().map_err(|_| HistoryError::Config("the access token is not a header value".into()))?;
                request.metadata_mut().insert("authorization", value);
            }
            match client.create_table(request).await {
                Ok(_) => tracing::info!(table = %table_id, archive = %shown, "created archive table"),
                Err(status) if status.code() == tonic::Code::AlreadyExists => {}
                Err(status) => {
                    return Err(super::status_error(
                        shown.to_owned(),
                        format!("creating table {table_id}"),
                        "",
                        status,
                    ));
                }
            }
        }
        Ok(())
    }
}
