//! placeholder
use crate::connectors::config_def::ConfigKey;
use crate::connectors::{Config, ConnectorKind, ConnectorPlugin, Task};
use async_trait::async_trait;
pub struct JdbcSourceConnector;
#[async_trait]
impl ConnectorPlugin for JdbcSourceConnector {
    fn class(&self) -> &'static str {
        "io.confluent.connect.jdbc.JdbcSourceConnector"
    }
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Source
    }
    fn config_keys(&self) -> Vec<ConfigKey> {
        vec![]
    }
    async fn task_configs(&self, config: &Config, _m: usize) -> anyhow::Result<Vec<Config>> {
        Ok(vec![config.clone()])
    }
    fn create_task(&self, _config: &Config) -> anyhow::Result<Task> {
        anyhow::bail!("not yet")
    }
}
