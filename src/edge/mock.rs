//! `org.driverprofiled1.Mock`: controls of the simulated actuators, served on the root object
//! with the mock backend only (the controls are the [`Mock`] handle it hands out).

use std::sync::Arc;

use driverprofiled_api::MockFault;
use zbus::message::Header;
use zbus::{Connection, interface};

use super::error::Error;
use crate::access::{Access, Roles};
use crate::backend::BackendAxis;
use crate::backend::mock::Mock;
use crate::core::{self, check_position, quote, quote_num};

pub struct MockControl {
    mock: Mock,
    access: Arc<Access>,
}

impl MockControl {
    pub fn new(mock: Mock, access: Arc<Access>) -> Self {
        MockControl { mock, access }
    }

    /// Every method needs the developer role: the mock moves "motors" and fakes hand moves.
    async fn allow(&self, conn: &Connection, hdr: &Header<'_>, method: &str) -> Result<(), Error> {
        Ok(self
            .access
            .check(conn, Some(hdr), method, Roles::DEVELOPER)
            .await?)
    }

    fn axis(&self, axis: &str) -> Result<&BackendAxis, Error> {
        self.mock
            .axes()
            .iter()
            .find(|(_, a)| a.name == axis)
            .ok_or_else(|| {
                Error::Core(core::Error::NotFound(format!(
                    "no actuator {}",
                    quote(axis)
                )))
            })
    }
}

/// Controls of the simulated actuators (mock backend only). Its methods need the developer role
/// (else org.freedesktop.DBus.Error.AccessDenied).
#[interface(name = "org.driverprofiled1.Mock")]
impl MockControl {
    /// Run simulated motion `factor` times faster than the configured speeds (0 < factor <= 10000).
    async fn set_speed_factor(
        &self,
        factor: f64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        self.allow(conn, &hdr, "Mock.SetSpeedFactor").await?;
        if !(factor.is_finite() && factor > 0.0 && factor <= 10_000.0) {
            return Err(Error::invalid_args(format!(
                "speed factor must be in (0, 10000], not {}",
                quote_num(factor)
            )));
        }
        self.mock.set_speed_factor(factor);
        Ok(())
    }

    /// kind "stall": the axis stops moving while commanded; "none": healthy again.
    async fn inject_fault(
        &self,
        axis: String,
        kind: String,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        self.allow(conn, &hdr, "Mock.InjectFault").await?;
        let (id, _) = self.axis(&axis)?;
        let stalled = match MockFault::parse(&kind) {
            Some(MockFault::Stall) => true,
            Some(MockFault::None) => false,
            None => {
                return Err(Error::invalid_args(format!(
                    "fault kind {} is not \"stall\" or \"none\"",
                    quote(&kind)
                )));
            }
        };
        self.mock.set_stall(*id, stalled);
        Ok(())
    }

    /// Put the axis at `position` as if the occupant moved it by hand.
    async fn set_position(
        &self,
        axis: String,
        position: f64,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), Error> {
        self.allow(conn, &hdr, "Mock.SetPosition").await?;
        let (id, a) = self.axis(&axis)?;
        check_position(a, position)?;
        self.mock.set_position(*id, position);
        Ok(())
    }
}
