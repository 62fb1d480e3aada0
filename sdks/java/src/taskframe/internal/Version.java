package taskframe.internal;

/** The SDK's version, sent at Register. */
public final class Version {
  public static final String SDK = "0.1.0";

  private Version() {}
}
