export declare const DEBIAN_ARCH: { x64: 'amd64'; arm64: 'arm64' };
export declare const DEBIAN_REVISION: string;
export declare const DEPENDS: string;
export declare function packagedConfig(example: string): string;
export declare function buildDeb(options: { arch: 'x64' | 'arm64'; binary: string; outDir: string; fast?: boolean; revision?: string }): string;
