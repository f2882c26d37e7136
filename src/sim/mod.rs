#[derive(Default)]
pub struct SimSpec {
    pub with_docker: bool,
}
impl SimSpec {
    pub fn parse_size(_s: &str) -> Result<SimSpec, String> {
        todo!()
    }
}
pub struct Expected {
    pub resources: std::collections::BTreeMap<String, usize>,
}
pub struct Simulator;
impl Simulator {
    pub fn start(_s: SimSpec) -> std::io::Result<Simulator> {
        todo!()
    }
    pub fn kube_url(&self) -> String {
        todo!()
    }
    pub fn docker_port(&self) -> u16 {
        0
    }
    pub fn expected(&self) -> &Expected {
        todo!()
    }
}
pub fn run_cli(
    _a: Option<&str>,
    _b: Option<&std::path::Path>,
    _c: std::net::SocketAddr,
) -> Result<(), String> {
    todo!()
}
