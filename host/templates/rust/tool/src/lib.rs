//! {{name}}: a Glassbox tool plugin. `count_words` counts the words of a text.

use glassbox_sdk::{Error, export_tools, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Text {
    text: String,
}

fn count_words(input: Text) -> Result<String, Error> {
    Ok(input.text.split_whitespace().count().to_string())
}

export_tools! {
    count_words {
        description: "Counts the words of a text.",
        parameters: json!({
            "type": "object",
            "properties": { "text": { "type": "string", "description": "The text to count" } },
            "required": ["text"],
            "additionalProperties": false,
        }),
    }
}
