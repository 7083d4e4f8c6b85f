//! The grants of capabilities above the sandbox, carried in a component's
//! [`Policy`](super::Policy) without the sandbox knowing them: each
//! capability defines the type of its own grant (which models, which agents)
//! and reads it back by type, so adding a capability adds no field here.

use opentelemetry::KeyValue;
use std::any::Any;
use std::fmt;

/// What a component may use of one capability.
pub trait Grant: Any + Send + Sync + fmt::Debug {
    /// The grant as span attributes, so a trace shows what the guest could reach.
    fn span_attributes(&self) -> Vec<KeyValue>;
}

/// A grant that can be copied with the policy carrying it.
trait StoredGrant: Grant {
    fn boxed_clone(&self) -> Box<dyn StoredGrant>;
}

impl<G: Grant + Clone> StoredGrant for G {
    fn boxed_clone(&self) -> Box<dyn StoredGrant> {
        Box::new(self.clone())
    }
}

/// At most one grant of each type.
#[derive(Default)]
pub struct Grants(Vec<Box<dyn StoredGrant>>);

impl Grants {
    /// The grant of type `G`, if one was given.
    pub fn get<G: Grant>(&self) -> Option<&G> {
        self.0
            .iter()
            .find_map(|grant| (grant.as_ref() as &dyn Any).downcast_ref::<G>())
    }

    /// Gives `grant`, replacing any earlier grant of its type.
    pub fn insert<G: Grant + Clone>(&mut self, grant: G) {
        self.0
            .retain(|existing| !(existing.as_ref() as &dyn Any).is::<G>());
        self.0.push(Box::new(grant));
    }

    pub(super) fn span_attributes(&self) -> impl Iterator<Item = KeyValue> + '_ {
        self.0.iter().flat_map(|grant| grant.span_attributes())
    }
}

impl Clone for Grants {
    fn clone(&self) -> Self {
        Grants(self.0.iter().map(|grant| grant.boxed_clone()).collect())
    }
}

impl fmt::Debug for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|grant| grant as &dyn fmt::Debug))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Colours(Vec<&'static str>);

    impl Grant for Colours {
        fn span_attributes(&self) -> Vec<KeyValue> {
            vec![KeyValue::new("colours", self.0.join(","))]
        }
    }

    #[derive(Clone, Debug)]
    struct Sizes;

    impl Grant for Sizes {
        fn span_attributes(&self) -> Vec<KeyValue> {
            Vec::new()
        }
    }

    #[test]
    fn grants_are_found_by_type_and_replaced_by_type() {
        let mut grants = Grants::default();
        assert_eq!(grants.get::<Colours>(), None);
        grants.insert(Colours(vec!["red"]));
        grants.insert(Sizes);
        grants.insert(Colours(vec!["blue", "green"]));
        let copy = grants.clone();
        assert_eq!(copy.get::<Colours>(), Some(&Colours(vec!["blue", "green"])));
        assert!(copy.get::<Sizes>().is_some());
        assert_eq!(
            copy.span_attributes().collect::<Vec<_>>(),
            [KeyValue::new("colours", "blue,green")]
        );
    }
}
