fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(&["berth/agent/v1/agent.proto"], &["."])?;
    Ok(())
}
