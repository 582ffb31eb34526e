//! The connector classes built into this worker, and what `GET /connector-plugins` lists.

use crate::config::ConnectorType;
use crate::connector::Plugin;
use crate::connectors;
use crate::convert::{CONVERTER_CLASSES, SIMPLE_HEADER_CONVERTER};
use crate::rest::{resolve_connector_class, ErrorMessage, PluginInfo, PluginType};
use crate::transforms::{known_predicates, known_transformations};

/// The built-in connectors.
#[derive(Clone, Debug)]
pub struct Plugins(Vec<Plugin>);

impl Default for Plugins {
    fn default() -> Self {
        Plugins(vec![
            connectors::file::SOURCE_PLUGIN,
            connectors::file::SINK_PLUGIN,
            connectors::jdbc::PLUGIN,
            connectors::http_sink::PLUGIN,
            connectors::postgres::PLUGIN,
            connectors::mysql::PLUGIN,
            connectors::mysql::MARIADB_PLUGIN,
        ])
    }
}

impl Plugins {
    pub fn new(plugins: Vec<Plugin>) -> Plugins {
        Plugins(plugins)
    }

    pub fn all(&self) -> &[Plugin] {
        &self.0
    }

    pub fn classes(&self) -> Vec<&'static str> {
        self.0.iter().map(|p| p.class).collect()
    }

    /// The plugin a `connector.class` names (see [`resolve_connector_class`]).
    pub fn find(&self, class_or_alias: &str) -> Result<Plugin, ErrorMessage> {
        let class = resolve_connector_class(class_or_alias, &self.classes())?;
        Ok(*self
            .0
            .iter()
            .find(|p| p.class == class)
            .expect("resolved among these classes"))
    }

    /// Every plugin as `GET /connector-plugins?connectorsOnly=false` lists them: connectors,
    /// then converters, header converters, transformations and predicates.
    pub fn infos(&self) -> Vec<PluginInfo> {
        let version = env!("CARGO_PKG_VERSION").to_string();
        let info = |class: &str, plugin_type: PluginType| PluginInfo {
            class: class.to_string(),
            plugin_type,
            version: version.clone(),
        };
        let mut out: Vec<PluginInfo> = self
            .0
            .iter()
            .map(|p| PluginInfo {
                class: p.class.to_string(),
                plugin_type: match p.connector_type {
                    ConnectorType::Source => PluginType::Source,
                    ConnectorType::Sink => PluginType::Sink,
                },
                version: p.version.to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.class.cmp(&b.class));
        for c in CONVERTER_CLASSES {
            out.push(info(c, PluginType::Converter));
        }
        out.push(info(SIMPLE_HEADER_CONVERTER, PluginType::HeaderConverter));
        for c in CONVERTER_CLASSES {
            out.push(info(c, PluginType::HeaderConverter));
        }
        for t in known_transformations() {
            out.push(info(&t, PluginType::Transformation));
        }
        for p in known_predicates() {
            out.push(info(&p, PluginType::Predicate));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_resolve_and_unknown_classes_are_client_errors() {
        let p = Plugins::default();
        assert_eq!(
            p.find("FileStreamSource").unwrap().class,
            connectors::file::SOURCE_CLASS
        );
        assert_eq!(
            p.find("FileStreamSinkConnector").unwrap().class,
            connectors::file::SINK_CLASS
        );
        let e = p.find("com.example.Nope").unwrap_err();
        assert_eq!(e.error_code, 400);
        assert!(e.message.contains("com.example.Nope"), "{}", e.message);
        assert!(
            e.message.contains(connectors::file::SOURCE_CLASS),
            "{}",
            e.message
        );
    }
}
