fn main() -> std::process::ExitCode {
    litehammer::main()
}
