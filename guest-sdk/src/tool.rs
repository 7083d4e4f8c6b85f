//! Exporting plain Rust functions as tools: JSON arguments in, text out.

use crate::{Error, ToolDefinition};
use serde::de::DeserializeOwned;

/// Exports the listed functions as this plugin's tools. Each entry is the name
/// of a function in scope (which is also the tool's name), taking one
/// deserializable argument and returning `Result<impl ToolOutput, Error>`.
///
/// See the [crate documentation](crate) for an example.
#[macro_export]
macro_rules! export_tools {
    ($($tool:ident { description: $description:expr, parameters: $parameters:expr $(,)? })+) => {
        struct __GlassboxToolPlugin;

        impl $crate::bindings::tool_plugin::exports::glassbox::agent::tool::Guest for __GlassboxToolPlugin {
            fn definitions() -> ::std::vec::Vec<$crate::ToolDefinition> {
                ::std::vec![$($crate::__private::definition(stringify!($tool), $description, $parameters)),+]
            }

            fn invoke(
                name: ::std::string::String,
                arguments: ::std::string::String,
                _call_id: ::std::option::Option<::std::string::String>,
            ) -> ::std::result::Result<::std::string::String, $crate::Error> {
                match name.as_str() {
                    $(stringify!($tool) => $crate::__private::invoke(&arguments, $tool),)+
                    other => ::std::result::Result::Err($crate::Error::NotFound(
                        ::std::format!("this plugin provides no tool named `{other}`"),
                    )),
                }
            }
        }

        $crate::bindings::tool_plugin::__export_tool_plugin_world!(__GlassboxToolPlugin with_types_in $crate::bindings::tool_plugin);
    };
}

/// What a tool function may return: text as is, JSON values serialized.
pub trait ToolOutput {
    fn into_text(self) -> String;
}

impl ToolOutput for String {
    fn into_text(self) -> String {
        self
    }
}

impl ToolOutput for &str {
    fn into_text(self) -> String {
        self.to_owned()
    }
}

impl ToolOutput for serde_json::Value {
    fn into_text(self) -> String {
        self.to_string()
    }
}

#[doc(hidden)]
pub fn definition(name: &str, description: &str, parameters: serde_json::Value) -> ToolDefinition {
    ToolDefinition {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters: parameters.to_string(),
    }
}

#[doc(hidden)]
pub fn invoke<A, R>(
    arguments: &str,
    tool: impl FnOnce(A) -> Result<R, Error>,
) -> Result<String, Error>
where
    A: DeserializeOwned,
    R: ToolOutput,
{
    let arguments = serde_json::from_str(arguments)
        .map_err(|e| Error::InvalidArguments(format!("arguments do not fit this tool: {e}")))?;
    tool(arguments).map(ToolOutput::into_text)
}
