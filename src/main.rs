fn main() {
    println!("usestats");
}
