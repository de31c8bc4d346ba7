public enum KVMScopeVersion {
    public static let string = "0.1.0"
}
