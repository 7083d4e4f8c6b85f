//! `get_weather`: current weather for a city, from deterministic offline data so
//! demos and tests give the same answer every time.

use glassbox_sdk::{Error, export_tools, json};
use serde::Deserialize;

#[derive(Deserialize)]
struct Place {
    city: String,
}

/// Known cities: (name, temperature in °C, conditions, humidity in %).
const CITIES: &[(&str, i32, &str, u32)] = &[
    ("Amsterdam", 11, "light rain", 87),
    ("Berlin", 9, "overcast", 76),
    ("Lisbon", 19, "sunny", 58),
    ("London", 12, "drizzle", 82),
    ("New York", 15, "partly cloudy", 61),
    ("Paris", 14, "clear", 64),
    ("Tokyo", 18, "humid", 73),
];

fn get_weather(place: Place) -> Result<glassbox_sdk::JsonValue, Error> {
    let wanted = place.city.trim();
    let Some(&(city, temperature_c, conditions, humidity)) = CITIES
        .iter()
        .find(|(name, ..)| name.eq_ignore_ascii_case(wanted))
    else {
        let known: Vec<&str> = CITIES.iter().map(|(name, ..)| *name).collect();
        return Err(Error::ToolFailed(format!(
            "no weather data for `{wanted}`; known cities: {}",
            known.join(", ")
        )));
    };
    Ok(json!({
        "city": city,
        "temperature_c": temperature_c,
        "conditions": conditions,
        "humidity_percent": humidity,
    }))
}

export_tools! {
    get_weather {
        description: "Current weather for a city: temperature in °C, conditions and humidity.",
        parameters: json!({
            "type": "object",
            "properties": { "city": { "type": "string", "description": "City name, e.g. Paris" } },
            "required": ["city"],
            "additionalProperties": false,
        }),
    }
}
